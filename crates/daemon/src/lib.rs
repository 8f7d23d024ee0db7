//! The rsync daemon: rsyncd.conf, modules, access control, authentication and serving.
