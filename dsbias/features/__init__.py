"""Features on disk: the file contract (:mod:`.store`, the only reader and writer) and the extraction of a
frozen backbone's features into it (:mod:`.extract`)."""
