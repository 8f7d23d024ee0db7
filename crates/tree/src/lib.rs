//! The file-list model, scanning, and safe filesystem operations beneath a root.
