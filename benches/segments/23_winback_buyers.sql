-- restarted(E within 30d after 60d): a purchase in [as-of - 30d, as-of), none in
-- [as-of - 90d, as-of - 30d), and one before as-of - 90d.
WITH winback AS (
  SELECT person_id
  FROM event_Purchase
  WHERE event_time < TIMESTAMP '{as_of}'
  GROUP BY person_id
  HAVING max(event_time) >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
     AND min(event_time) < TIMESTAMP '{as_of}' - INTERVAL '90 days'
     AND count(*) FILTER (WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '90 days'
                            AND event_time < TIMESTAMP '{as_of}' - INTERVAL '30 days') = 0
)
SELECT count(*) AS n
FROM installations i
JOIN winback w ON w.person_id = i.person_id
WHERE i.push_registration_enabled
  AND i.state <> 'uninstalled'
