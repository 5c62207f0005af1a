-- production_order_headers: one row per production order as created, with its cost estimate.
SELECT company, production_order, plant, material, quantity, location, start_date, finish_date,
       planned_order, receipt_valuation, currency, standard_material_cost,
       standard_activity_cost, standard_cost, standard_unit_cost, event_position
FROM production_order_created
