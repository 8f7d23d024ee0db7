//! rsync's delta algorithm: rolling checksum, block signatures, matching, token stream and patching.
//! Pure computation, no I/O.
