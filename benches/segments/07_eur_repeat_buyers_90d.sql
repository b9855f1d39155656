WITH repeat_buyers AS (
  SELECT person_id
  FROM event_Purchase
  WHERE amount >= 50
    AND currency = 'EUR'
    AND event_time >= TIMESTAMP '{as_of}' - INTERVAL '90 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:90d}
  GROUP BY person_id
  HAVING count(*) >= 2
)
SELECT count(*) AS n
FROM installations i
JOIN repeat_buyers r ON r.person_id = i.person_id
WHERE i.primary_device
