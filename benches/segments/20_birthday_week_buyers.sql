-- `birthday within next 7d`: the days from date(as-of) to date(as-of + 7d), both included, hold
-- the person's birthday of some year Y after the birth year (a 29 February birthday falls on
-- 1 March when Y is not a leap year). The window spans at most two calendar years.
WITH w AS (
  SELECT CAST(TIMESTAMP '{as_of}' AS DATE) AS lo,
         CAST(TIMESTAMP '{as_of}' + INTERVAL '7 days' AS DATE) AS hi
), years AS (
  SELECT lo, hi, CAST(extract(year FROM lo) AS INT) + k AS y
  FROM w CROSS JOIN (VALUES (0), (1)) AS t(k)
  WHERE CAST(extract(year FROM lo) AS INT) + k <= CAST(extract(year FROM hi) AS INT)
), birthday_people AS (
  SELECT DISTINCT p.person_id
  FROM persons p CROSS JOIN years
  WHERE p.birth_date IS NOT NULL
    AND years.y > CAST(extract(year FROM p.birth_date) AS INT)
    AND CASE WHEN extract(month FROM p.birth_date) = 2 AND extract(day FROM p.birth_date) = 29
                  AND NOT (years.y % 4 = 0 AND (years.y % 100 <> 0 OR years.y % 400 = 0))
             THEN make_date(years.y, 3, 1)
             ELSE make_date(years.y, CAST(extract(month FROM p.birth_date) AS INT),
                            CAST(extract(day FROM p.birth_date) AS INT))
        END BETWEEN years.lo AND years.hi
)
SELECT count(*) AS n
FROM installations i
JOIN birthday_people bp ON bp.person_id = i.person_id
WHERE i.push_registration_enabled
  AND i.state <> 'uninstalled'
  AND EXISTS (
    SELECT 1 FROM event_Purchase b
    WHERE b.person_id = i.person_id
      AND b.event_time >= TIMESTAMP '{as_of}' - INTERVAL '180 days'
      AND b.event_time < TIMESTAMP '{as_of}'
      AND b.{period} >= {period_from:180d})
