-- count(DISTINCT ...) skips missing categories, as `count distinct` does.
WITH browsers AS (
  SELECT person_id
  FROM event_ViewProduct
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:30d}
  GROUP BY person_id
  HAVING count(DISTINCT category) >= 5
)
SELECT count(*) AS n
FROM persons p
JOIN browsers v ON v.person_id = p.person_id
WHERE array_length(p.emails) > 0
  AND NOT EXISTS (
    SELECT 1 FROM event_Purchase b
    WHERE b.person_id = p.person_id
      AND b.event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
      AND b.event_time < TIMESTAMP '{as_of}'
      AND b.{period} >= {period_from:30d})
