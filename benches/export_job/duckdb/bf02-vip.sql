-- person.tags has "vip"
SELECT i.installation_id AS "installationId", i.push_registration_id AS "pushRegistrationId",
       i.platform AS "platform", p.external_user_id AS "externalUserId"
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE i.push_registration_enabled AND i.state <> 'uninstalled'  -- the push channel
  AND array_has(p.tags, 'vip')
