//! `--insecure-links` turns the ownership rule off process-wide (own process: the switch is
//! global, so it cannot share one with the other tests).

use std::path::Path;

#[test]
fn insecure_links_follow_foreign_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    std::fs::create_dir(b.join("outside")).unwrap();
    std::fs::write(b.join("outside/victim"), "secret").unwrap();
    let link = b.join("opd");
    std::os::unix::fs::symlink(b.join("outside"), &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let victim = link.join("victim");
    assert!(rtsync_oppath::is_refusal(
        &rtsync_oppath::open(&victim, libc::O_RDONLY, 0).unwrap_err()
    ));
    rtsync_oppath::set_insecure_links(true);
    assert!(rtsync_oppath::open(&victim, libc::O_RDONLY, 0).is_ok());
    assert!(rtsync_oppath::check(Path::new(&victim)).unwrap());
    rtsync_oppath::set_insecure_links(false);
    assert!(rtsync_oppath::check(&victim).is_err());
}
