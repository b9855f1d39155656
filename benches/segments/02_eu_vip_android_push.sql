-- A depersonalized device points at an anonymous person (no country, no tags), so the inner
-- join on the device's own person_id is exactly the engine's pair.
SELECT count(*) AS n
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE p.country IN ('HR', 'SI', 'AT', 'DE')
  AND array_has_any(p.tags, ['vip', 'early-adopter'])
  AND i.platform = 'Android'
  AND i.push_registration_enabled
