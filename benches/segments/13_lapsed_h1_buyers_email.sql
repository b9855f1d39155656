-- `between 2026-01-01 and 2026-06-30` includes the whole end day: [2026-01-01, 2026-07-01).
-- One scan from 2026-01-01 with two filtered counts.
WITH lapsed AS (
  SELECT person_id
  FROM event_Purchase
  WHERE event_time >= TIMESTAMP '2026-01-01 00:00:00'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= DATE '2026-01-01'
  GROUP BY person_id
  HAVING count(*) FILTER (WHERE event_time < TIMESTAMP '2026-07-01 00:00:00') > 0
     AND count(*) FILTER (WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '90 days') = 0
)
SELECT count(*) AS n
FROM persons p
JOIN lapsed l ON l.person_id = p.person_id
WHERE array_length(p.emails) > 0
