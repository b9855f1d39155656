-- last(AppLaunch) is the person's latest launch before as-of; a person with none does not match.
WITH last_launch AS (
  SELECT person_id
  FROM event_AppLaunch
  WHERE event_time < TIMESTAMP '{as_of}'
  GROUP BY person_id
  HAVING max(event_time) < TIMESTAMP '{as_of}' - INTERVAL '14 days'
)
SELECT count(*) AS n
FROM installations i
JOIN last_launch l ON l.person_id = i.person_id
WHERE i.state <> 'uninstalled'
  AND i.push_registration_enabled
