-- The operations of each material's routing as it is now (its last change).
CREATE VIEW routing_operations AS
SELECT r.company, r.plant, r.material, r.operation, r.work_center, r.setup_hours,
       r.run_hours_per_unit
FROM routing_operation_versions r
JOIN (
    SELECT company, plant, material, max(event_position) AS event_position
    FROM routing_operation_versions
    GROUP BY company, plant, material
) last ON last.company = r.company AND last.plant = r.plant AND last.material = r.material
      AND last.event_position = r.event_position
