-- A chain view < cart < purchase (strictly later), each step at most 1 day after the one before,
-- all three in [as-of - 7d, as-of). Given the cart, the view before it and the purchase after it
-- are independent, so: some cart with a view in [t - 1d, t) and a purchase in (t, t + 1d].
WITH v AS (
  SELECT person_id, event_time FROM event_ViewProduct
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:7d}
), c AS (
  SELECT person_id, event_time FROM event_AddToCart
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:7d}
), b AS (
  SELECT person_id, event_time FROM event_Purchase
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:7d}
), funnel AS (
  SELECT DISTINCT c.person_id
  FROM c
  WHERE EXISTS (SELECT 1 FROM v WHERE v.person_id = c.person_id
                  AND v.event_time < c.event_time
                  AND v.event_time >= c.event_time - INTERVAL '1 day')
    AND EXISTS (SELECT 1 FROM b WHERE b.person_id = c.person_id
                  AND b.event_time > c.event_time
                  AND b.event_time <= c.event_time + INTERVAL '1 day')
)
SELECT count(*) AS n
FROM persons p
JOIN funnel f ON f.person_id = p.person_id
WHERE array_length(p.emails) > 0
