WITH cheapest AS (
  SELECT person_id, min(amount) AS min_amount
  FROM event_Purchase
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '180 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:180d}
  GROUP BY person_id
)
SELECT count(*) AS n
FROM persons p
LEFT JOIN cheapest c ON c.person_id = p.person_id
WHERE array_has(p.tags, 'bargain-hunter')
   OR c.min_amount < 5
