-- Cap what a client can put in the documents bucket through a signed upload URL, so that
-- registering an object (POST /uploads {"storage_path": ...}) never has to read more than
-- MAX_STORED_UPLOAD_BYTES (200 MiB by default). Only when no limit was set by hand.
update storage.buckets
   set file_size_limit = 209715200
 where id = 'documents' and file_size_limit is null;
