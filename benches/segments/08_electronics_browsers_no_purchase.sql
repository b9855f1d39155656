WITH browsers AS (
  SELECT person_id
  FROM event_ViewProduct
  WHERE category = 'electronics'
    AND event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:30d}
  GROUP BY person_id
  HAVING count(*) >= 3
), buyers AS (
  SELECT DISTINCT person_id
  FROM event_Purchase
  WHERE category = 'electronics'
    AND event_time >= TIMESTAMP '{as_of}' - INTERVAL '90 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:90d}
)
SELECT count(*) AS n
FROM persons p
JOIN browsers v ON v.person_id = p.person_id
WHERE NOT EXISTS (SELECT 1 FROM buyers b WHERE b.person_id = p.person_id)
