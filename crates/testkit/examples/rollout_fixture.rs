//! Writes the rollout fixture (reports and zone file) to a directory:
//! `cargo run -p dmarc-testkit --example rollout_fixture DIR`.

fn main() {
    let dir =
        std::path::PathBuf::from(std::env::args().nth(1).expect("usage: rollout_fixture DIR"));
    std::fs::create_dir_all(dir.join("reports")).expect("create DIR/reports");
    for (name, xml) in dmarc_testkit::rollout::reports() {
        std::fs::write(dir.join("reports").join(name), xml).expect("write a report");
    }
    std::fs::write(dir.join("example.com.zone"), dmarc_testkit::rollout::ZONE)
        .expect("write the zone");
}
