//! rsync filter rules (include/exclude/merge, anchoring, `dir/`, `**`, `***`) and wildmatch.
