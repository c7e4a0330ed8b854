-- `upload_rejected`: an upload the intake refused before it made a document or a job (a name,
-- type or content it does not accept, a file over the limit, a user over the rate limit). It
-- has no transition of its own, so the uploads function records it with
-- `record_processing_event()` (fire-and-forget, through `record_events`): operators see
-- rejections by reason (`error_message` holds the error code, `details.status` the HTTP status).
--
-- The constraint is added NOT VALID and validated separately, so that the table is locked
-- only briefly (validation takes SHARE UPDATE EXCLUSIVE, which lets writers go on).

alter table public.document_processing_events
  drop constraint if exists document_processing_events_event_type_check;
alter table public.document_processing_events
  add constraint document_processing_events_event_type_check check (event_type in (
    'upload_started', 'upload_rejected', 'enqueued', 'processing_started', 'completed',
    'failed', 'retry_scheduled', 'cancelled', 'stalled_recovered', 'released'
  )) not valid;
alter table public.document_processing_events
  validate constraint document_processing_events_event_type_check;
