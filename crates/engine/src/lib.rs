//! The transfer engine: rsync options, the local generator/receiver, itemize output and statistics.
