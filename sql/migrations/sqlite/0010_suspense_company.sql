-- The company of a suspended reaction's causing event (its `company` field): the suspense list
-- shows each caller the reactions of their companies, a retry needs the permission there.
-- NULL (an event of no company, or suspended before): shown to holders in every company only.
ALTER TABLE reactor_suspense ADD COLUMN company TEXT;
