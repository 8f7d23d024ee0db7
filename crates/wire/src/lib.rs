//! The rsync wire protocol (30–32): varints, multiplexed I/O, handshake, file-list codec, roles.
