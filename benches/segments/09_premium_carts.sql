-- One scan of the 90-day range; the 30-day max is a filtered aggregate.
WITH carts AS (
  SELECT person_id
  FROM event_AddToCart
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '90 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:90d}
  GROUP BY person_id
  HAVING max(price) FILTER (WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '30 days') >= 100
     AND avg(CAST(price AS DECIMAL(38, 10))) > 40
)
SELECT count(*) AS n
FROM installations i
JOIN carts c ON c.person_id = i.person_id
WHERE i.notifications_enabled
