//! Daemon authentication against a stock rsync daemon: same outcome, same `@ERROR` text and
//! exit codes as the stock client.

mod interop_util;

use interop_util::*;
use rtsync_wire::client::ClientEnv;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

struct AuthSetup {
    daemon: StockDaemon,
    _src: tempfile::TempDir,
    work: tempfile::TempDir,
}

fn setup() -> AuthSetup {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let secrets = work.path().join("secrets");
    std::fs::write(&secrets, "alice:sesame\n").unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!("auth users = alice\nsecrets file = {}\n", secrets.display());
    let daemon = StockDaemon::start(&[Module {
        name: "mod",
        path: src.path(),
        extra: &extra,
    }]);
    AuthSetup {
        daemon,
        _src: src,
        work,
    }
}

fn stock_with_password(args: &[&str], password: &str) -> std::process::Output {
    Command::new(stock_rsync())
        .args(args)
        .env("RSYNC_PASSWORD", password)
        .output()
        .unwrap()
}

#[test]
fn right_password_transfers() {
    let s = setup();
    let url = s.daemon.url("mod/");
    let url = url.replace("rsync://", "rsync://alice@");
    let ours = s.work.path().join("ours");
    let stock = s.work.path().join("stock");
    let out = stock_with_password(&["-a", &url, &format!("{}/", stock.display())], "sesame");
    assert!(out.status.success(), "{out:?}");
    let env = ClientEnv {
        password: Some("sesame".into()),
        ..Default::default()
    };
    let (code, err) = run_ours_env(&["-a", &url, &format!("{}/", ours.display())], &env);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_same_tree(&ours, &stock, true);
}

#[test]
fn wrong_password_gives_stocks_error_line_and_code() {
    let s = setup();
    let url = s.daemon.url("mod/").replace("rsync://", "rsync://alice@");
    let dest = format!("{}/", s.work.path().join("d").display());
    let out = stock_with_password(&["-a", &url, &dest], "wrong");
    let stock_err = String::from_utf8_lossy(&out.stderr);
    let stock_line = stock_err.lines().next().unwrap_or_default().to_string();
    let env = ClientEnv {
        password: Some("wrong".into()),
        ..Default::default()
    };
    let (code, err) = run_ours_env(&["-a", &url, &dest], &env);
    assert_eq!(code, out.status.code().unwrap());
    assert_eq!(err, stock_line);
    assert!(
        err.starts_with("@ERROR: auth failed on module mod"),
        "{err}"
    );
}

#[test]
fn unknown_module_gives_stocks_error_line_and_code() {
    let s = setup();
    let url = s.daemon.url("nope/");
    let dest = format!("{}/", s.work.path().join("d").display());
    let out = run_stock(&["-a", &url, &dest]);
    let stock_err = String::from_utf8_lossy(&out.stderr);
    let (code, err) = run_ours_env(&["-a", &url, &dest], &ClientEnv::default());
    assert_eq!(code, out.status.code().unwrap());
    assert_eq!(err, stock_err.lines().next().unwrap_or_default());
}

#[test]
fn password_file_readable_by_others_is_refused_like_stock() {
    let s = setup();
    let pw = s.work.path().join("pw");
    std::fs::write(&pw, "sesame\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = s.daemon.url("mod/").replace("rsync://", "rsync://alice@");
    let dest = format!("{}/", s.work.path().join("d").display());
    let pwarg = format!("--password-file={}", pw.display());
    let out = run_stock(&["-a", &pwarg, &url, &dest]);
    let stock_err = String::from_utf8_lossy(&out.stderr);
    let (code, err) = run_ours_env(&["-a", &pwarg, &url, &dest], &ClientEnv::default());
    assert_eq!(code, out.status.code().unwrap(), "stock said: {stock_err}");
    assert_eq!(err, stock_err.lines().next().unwrap_or_default());
    // With a private file it works.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, err) = run_ours_env(&["-a", &pwarg, &url, &dest], &ClientEnv::default());
    assert_eq!((code, err.as_str()), (0, ""));
}
