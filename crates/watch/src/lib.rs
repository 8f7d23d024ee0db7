//! Recursive inotify watching that never misses a change.
