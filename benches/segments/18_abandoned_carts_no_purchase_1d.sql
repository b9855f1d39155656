-- Some cart in [as-of - 30d, as-of) whose following day has elapsed by as-of (t + 1d <= as-of)
-- and holds no purchase: none with t < purchase time <= t + 1d (and before as-of).
WITH abandoned AS (
  SELECT DISTINCT c.person_id
  FROM event_AddToCart c
  WHERE c.event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
    AND c.event_time <= TIMESTAMP '{as_of}' - INTERVAL '1 day'
    AND c.{period} >= {period_from:30d}
    AND NOT EXISTS (
      SELECT 1 FROM event_Purchase b
      WHERE b.person_id = c.person_id
        AND b.event_time > c.event_time
        AND b.event_time <= c.event_time + INTERVAL '1 day'
        AND b.event_time < TIMESTAMP '{as_of}'
        AND b.{period} >= {period_from:30d})
)
SELECT count(*) AS n
FROM installations i
JOIN abandoned a ON a.person_id = i.person_id
WHERE i.platform = 'Android'
  AND i.push_registration_enabled
  AND i.state <> 'uninstalled'
