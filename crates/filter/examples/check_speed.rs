//! Rough speed check: `cargo run --release -p rtsync-filter --example check_speed`.

use std::time::Instant;

use rtsync_filter::{FilterSet, NoFiles, Side};

fn main() {
    let mut set = FilterSet::new();
    for rule in [
        "- *.o",
        "- *.tmp",
        "+ /src/***",
        "- /build/",
        "- **/node_modules/",
        "- .git/",
        "- core",
        "+ *.rs",
        "- target/",
        "- *~",
        "- /a/b/c/d",
        "- x/y",
        "- [Tt]humbs.db",
        "P keep/**",
    ] {
        set.add_filter(rule.as_bytes(), &mut NoFiles).unwrap();
    }
    if std::env::var_os("CVS").is_some() {
        set.add_cvs_exclude().unwrap();
    }
    let paths: Vec<Vec<u8>> = (0..10_000)
        .map(|i| {
            format!(
                "dir{}/sub{}/deeper/file{}.{}",
                i % 37,
                i % 11,
                i,
                ["c", "h", "rs", "txt"][i % 4]
            )
            .into_bytes()
        })
        .collect();
    let start = Instant::now();
    let mut excluded = 0usize;
    let rounds = 20;
    for _ in 0..rounds {
        for p in &paths {
            excluded += set.check(p, false, Side::Sender).is_excluded() as usize;
        }
    }
    let checks = rounds * paths.len();
    let per = start.elapsed().as_nanos() as f64 / checks as f64;
    println!(
        "{checks} checks against {} rules: {per:.0} ns/check ({excluded} excluded)",
        set.rules().count() + set.cvs_rules().count()
    );
}
