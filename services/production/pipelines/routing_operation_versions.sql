-- routing_operation_versions: the operations of each routing as each change set them.
SELECT company, plant, material, operation, work_center, setup_hours, run_hours_per_unit,
       event_position
FROM production_routing_rows
