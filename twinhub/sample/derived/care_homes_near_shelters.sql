-- Elderly care homes and the emergency shelters within 500 m of them: what an
-- evacuation plan for the elderly starts from. Civil affairs x emergency management.
SELECT e.facility_id AS care_home_id,
       e.name AS care_home,
       e.capacity AS beds,
       s.facility_id AS shelter_id,
       s.name AS shelter,
       s.capacity AS shelter_capacity,
       round(ST_Distance_Spheroid(ST_FlipCoordinates(e.geometry), ST_FlipCoordinates(s.geometry))) AS metres,
       e.geometry
FROM civil_affairs.elderly_care AS e
JOIN emergency.shelters AS s
  ON ST_DWithin_Spheroid(ST_FlipCoordinates(e.geometry), ST_FlipCoordinates(s.geometry), 500)
WHERE e.category = 'elderly_care_home'
