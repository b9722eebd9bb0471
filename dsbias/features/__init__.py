"""Features on disk: the file contract (:mod:`.store`, the only reader and writer), the resumable extraction of a
frozen backbone's features into it (:mod:`.extract`) and its ``extract`` config section (:mod:`.config`)."""
