-- Week k (1..6) is [as-of - 7k days, as-of - 7(k-1) days). A person matches when at least 4 of
-- those weeks hold 3 or more of their launches (a week without launches has 0, which fails >= 3).
WITH weekly AS (
  SELECT person_id,
         CASE WHEN event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days' THEN 1
              WHEN event_time >= TIMESTAMP '{as_of}' - INTERVAL '14 days' THEN 2
              WHEN event_time >= TIMESTAMP '{as_of}' - INTERVAL '21 days' THEN 3
              WHEN event_time >= TIMESTAMP '{as_of}' - INTERVAL '28 days' THEN 4
              WHEN event_time >= TIMESTAMP '{as_of}' - INTERVAL '35 days' THEN 5
              ELSE 6 END AS week
  FROM event_AppLaunch
  WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '42 days'
    AND event_time < TIMESTAMP '{as_of}'
    AND {period} >= {period_from:42d}
), regulars AS (
  SELECT person_id
  FROM (SELECT person_id, week FROM weekly GROUP BY person_id, week HAVING count(*) >= 3) w
  GROUP BY person_id
  HAVING count(*) >= 4
)
SELECT count(*) AS n
FROM installations i
JOIN regulars r ON r.person_id = i.person_id
WHERE i.primary_device
  AND i.push_registration_enabled
