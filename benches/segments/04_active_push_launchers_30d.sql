-- Event aggregates are per person (all of the person's devices); windows are [as-of - D, as-of).
WITH active AS (
  SELECT person_id
  FROM event_AppLaunch
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:30d}
  GROUP BY person_id
  HAVING count(*) >= 3
)
SELECT count(*) AS n
FROM installations i
JOIN active a ON a.person_id = i.person_id
WHERE i.primary_device
  AND i.push_registration_enabled
