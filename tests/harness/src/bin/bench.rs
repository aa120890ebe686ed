//! `bench`: the benchmark (see `bench/README.md`; `scripts/bench.sh` builds
//! and runs it).
//!
//! ```text
//! bench [--scenario S]... [--strategies a,b,...] [--backends sdk,isapi] [--quick]
//!       [--seed N] [--out DIR]
//!       [--hikwatch PATH] [--sdk DIR] [--outage-mins M] [--commit TEXT]
//!       [--armv7 BIN --armv7-sdk DIR] [--aarch64 BIN --aarch64-sdk DIR]
//!       [--footprint-only] [--quiet]
//! ```
//!
//! Every strategy runs on every backend of `--backends` (default both), except the
//! benchmark-only peers (`naive`, `sdk`), which run on the SDK backend only; a strategy
//! written `isapi/hybrid` runs on that backend only. Rows are labelled `backend/strategy`.
//! `--armv7` also measures the armv7 daemon with the ISAPI backend (no SDK) against 16 and
//! 64 simcam cameras.
//!
//! Writes `DIR/results.md`, `DIR/storm.svg` (when the storm ran) and one JSON file per run
//! into `DIR` (default `bench/runs/<UTC time>`), and prints the report. With `--aarch64`
//! (the aarch64 `hikwatch` and the vendor's aarch64 SDK folder, laid out with libuuid as
//! the tests do) the footprint at 16 and 64 simcam cameras also goes to
//! `DIR/footprint-aarch64.md`. Exit codes: 0 the
//! runs finished (what they noticed is in the report), 1 a run could not start, 2 bad
//! usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use harness::bench::{
    self, BACKENDS, Finished, Plan, STRATEGIES, Scale, Scenario, footprint, report, svg,
};

const USAGE: &str = "usage: bench [--scenario flap|storm|silent|badpass|steady|outage]... \
[--strategies poll,event,queue,hybrid,naive,sdk] [--backends sdk,isapi] [--quick] [--seed N] [--out DIR] \
[--hikwatch PATH] [--sdk DIR] [--outage-mins M] [--commit TEXT] \
[--armv7 BIN --armv7-sdk DIR] [--aarch64 BIN --aarch64-sdk DIR] [--footprint-only] [--quiet]";

struct Args {
    scenarios: Vec<Scenario>,
    strategies: Vec<String>,
    backends: Vec<String>,
    scale: Scale,
    seed: u64,
    out: Option<PathBuf>,
    hikwatch: Option<PathBuf>,
    sdk: Option<PathBuf>,
    outage: Duration,
    commit: String,
    armv7: Option<(PathBuf, PathBuf)>,
    aarch64: Option<(PathBuf, PathBuf)>,
    verbose: bool,
}

/// Two options that go together (`--X BIN --X-sdk DIR`).
fn pair(
    name: &str,
    bin: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> Result<Option<(PathBuf, PathBuf)>, String> {
    match (bin, sdk) {
        (Some(b), Some(s)) => Ok(Some((b, s))),
        (None, None) => Ok(None),
        _ => Err(format!("--{name} and --{name}-sdk go together")),
    }
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        scenarios: Vec::new(),
        strategies: STRATEGIES.iter().map(|s| (*s).to_string()).collect(),
        backends: BACKENDS.iter().map(|s| (*s).to_string()).collect(),
        scale: Scale::Full,
        seed: 7,
        out: None,
        hikwatch: None,
        sdk: None,
        outage: Duration::from_secs(62 * 60),
        commit: "unknown".into(),
        armv7: None,
        aarch64: None,
        verbose: true,
    };
    let (mut armv7_bin, mut armv7_sdk) = (None, None);
    let (mut aarch64_bin, mut aarch64_sdk) = (None, None);
    let mut footprint_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--scenario" => {
                let v = val("--scenario")?;
                for s in v.split(',') {
                    a.scenarios
                        .push(Scenario::from_name(s).ok_or(format!("unknown scenario {s:?}"))?);
                }
            }
            "--strategies" => {
                let v = val("--strategies")?;
                a.strategies = v.split(',').map(str::to_string).collect();
                for s in &a.strategies {
                    let (b, st) = bench::split_label(s);
                    if !STRATEGIES.contains(&st) {
                        return Err(format!(
                            "unknown strategy {st:?} (one of {})",
                            STRATEGIES.join(", ")
                        ));
                    }
                    if !BACKENDS.contains(&b) {
                        return Err(format!("unknown backend {b:?} in {s:?}"));
                    }
                }
            }
            "--backends" => {
                let v = val("--backends")?;
                a.backends = v.split(',').map(str::to_string).collect();
                if let Some(bad) = a.backends.iter().find(|b| !BACKENDS.contains(&b.as_str())) {
                    return Err(format!(
                        "unknown backend {bad:?} (one of {})",
                        BACKENDS.join(", ")
                    ));
                }
            }
            "--quick" => a.scale = Scale::Quick,
            "--seed" => {
                a.seed = val("--seed")?
                    .parse()
                    .map_err(|_| "--seed: not a number".to_string())?;
            }
            "--out" => a.out = Some(val("--out")?.into()),
            "--hikwatch" => a.hikwatch = Some(val("--hikwatch")?.into()),
            "--sdk" => a.sdk = Some(val("--sdk")?.into()),
            "--outage-mins" => {
                let m: u64 = val("--outage-mins")?
                    .parse()
                    .map_err(|_| "--outage-mins: not a number".to_string())?;
                a.outage = Duration::from_secs(m * 60);
            }
            "--commit" => a.commit = val("--commit")?,
            "--armv7" => armv7_bin = Some(PathBuf::from(val("--armv7")?)),
            "--armv7-sdk" => armv7_sdk = Some(PathBuf::from(val("--armv7-sdk")?)),
            "--aarch64" => aarch64_bin = Some(PathBuf::from(val("--aarch64")?)),
            "--aarch64-sdk" => aarch64_sdk = Some(PathBuf::from(val("--aarch64-sdk")?)),
            "--footprint-only" => footprint_only = true,
            "--quiet" => a.verbose = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    a.armv7 = pair("armv7", armv7_bin, armv7_sdk)?;
    a.aarch64 = pair("aarch64", aarch64_bin, aarch64_sdk)?;
    if footprint_only {
        if a.armv7.is_none() && a.aarch64.is_none() {
            return Err(
                "--footprint-only needs --armv7/--armv7-sdk or --aarch64/--aarch64-sdk".into(),
            );
        }
        if !a.scenarios.is_empty() {
            return Err("--footprint-only runs no scenario; drop --scenario".into());
        }
    } else if a.scenarios.is_empty() {
        a.scenarios = Scenario::DEFAULT.to_vec();
    }
    a.strategies = bench::labels(&a.backends, &a.strategies);
    if a.strategies.is_empty() && !a.scenarios.is_empty() {
        return Err("no run left: the peers naive and sdk run on the SDK backend only".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let hikwatch = args.hikwatch.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("hikwatch")))
            .unwrap_or_else(|| "hikwatch".into())
    });
    if !args.scenarios.is_empty() && !hikwatch.is_file() {
        eprintln!(
            "bench: no hikwatch binary at {} (cargo build --release --bin hikwatch, or --hikwatch)",
            hikwatch.display()
        );
        return ExitCode::from(2);
    }
    let sdk = args.sdk.clone().unwrap_or_else(|| {
        let repo_s = repo.display().to_string();
        harness::real_sdk_dir(&repo_s)
    });
    // Absolute paths: the daemon runs in a temporary folder.
    let abs = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    let hikwatch = abs(hikwatch);
    let sdk = abs(sdk);
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = report::utc_now().replace([' ', ':'], "-");
        repo.join("bench/runs").join(stamp.trim_end_matches("-UTC"))
    });
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("bench: {}: {e}", out.display());
        return ExitCode::from(1);
    }
    let nofile = bench::procfs::raise_nofile();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let machine = report::Machine::here(&args.commit, &command, args.seed);
    if args.verbose {
        eprintln!(
            "bench: {} scenario(s) × {} runs ({}); hikwatch {}; SDK {}; output {}; open files {nofile}",
            args.scenarios.len(),
            args.strategies.len(),
            args.strategies.join(", "),
            hikwatch.display(),
            sdk.display(),
            out.display()
        );
    }

    let mut done: Vec<Finished> = Vec::new();
    for &s in &args.scenarios {
        let plan = Plan::new(s, args.scale, args.seed, args.outage);
        if args.verbose {
            eprintln!(
                "bench: scenario {} ({} cameras, {} faults, phase {:?})",
                s.name(),
                plan.cameras,
                plan.faults.len(),
                plan.phase
            );
        }
        match bench::run_scenario(&plan, &args.strategies, &hikwatch, &sdk, args.verbose) {
            Ok(runs) => {
                for f in &runs {
                    let name = f.strategy.replace('/', "-");
                    let path = out.join(format!("{}-{name}.json", s.name()));
                    if let Err(e) = std::fs::write(&path, report::json(f)) {
                        eprintln!("bench: {}: {e}", path.display());
                    }
                    let log = out.join(format!("{}-{name}.log", s.name()));
                    if let Err(e) = std::fs::write(&log, &f.raw.log_text) {
                        eprintln!("bench: {}: {e}", log.display());
                    }
                }
                done.extend(runs);
            }
            Err(e) => {
                eprintln!("bench: {e}");
                return ExitCode::from(1);
            }
        }
    }

    let svg_name = "storm.svg";
    let svg = svg::storm(&done);
    if let Some(doc) = &svg {
        if let Err(e) = std::fs::write(out.join(svg_name), doc) {
            eprintln!("bench: {svg_name}: {e}");
        }
    }
    let mut md = report::markdown(&done, &machine, svg.as_ref().map(|_| svg_name));
    if let Some((bin, dir)) = &args.armv7 {
        if args.verbose {
            eprintln!("bench: armv7 footprint: {} under qemu-arm", bin.display());
        }
        match footprint::run(bin, dir, 64, Duration::from_secs(20)) {
            Ok(f) => md.push_str(&footprint::markdown(&f)),
            Err(e) => {
                eprintln!("bench: armv7 footprint: {e}");
                md.push_str(&format!("## armv7 footprint\n\nfailed: {e}\n"));
            }
        }
        let mut runs = Vec::new();
        for cameras in [16, 64] {
            if args.verbose {
                eprintln!(
                    "bench: armv7 footprint, ISAPI backend: {} under qemu-arm, {cameras} simcam cameras",
                    bin.display()
                );
            }
            match footprint::run_isapi(bin, cameras, Duration::from_secs(20)) {
                Ok(f) => runs.push(f),
                Err(e) => eprintln!("bench: armv7 ISAPI footprint at {cameras} cameras: {e}"),
            }
        }
        md.push_str(&if runs.is_empty() {
            "### armv7 with the ISAPI backend\n\nfailed (see the bench's stderr)\n".to_string()
        } else {
            footprint::markdown_isapi(&runs)
        });
    }
    if let Some((bin, dir)) = &args.aarch64 {
        let mut runs = Vec::new();
        for cameras in [16, 64] {
            if args.verbose {
                eprintln!(
                    "bench: aarch64 footprint: {} under qemu-aarch64, vendor SDK, {cameras} cameras",
                    bin.display()
                );
            }
            match footprint::run_vendor(bin, dir, cameras, Duration::from_secs(20)) {
                Ok(f) => runs.push(f),
                Err(e) => eprintln!("bench: aarch64 footprint at {cameras} cameras: {e}"),
            }
        }
        let section = if runs.is_empty() {
            "## aarch64 footprint with the vendor's SDK\n\nfailed (see the bench's stderr)\n"
                .to_string()
        } else {
            footprint::markdown_vendor(&runs)
        };
        let page = format!(
            "# aarch64 footprint with the vendor's HCNetSDK\n\n\
             | | |\n|---|---|\n\
             | machine | {} ({} cores), {:.1} GiB RAM, Linux {}, qemu-user |\n\
             | date | {} |\n| hikwatch | {} (aarch64 release build) |\n| command | `{}` |\n\n{section}",
            machine.cpu,
            machine.cores,
            machine.mem_gib,
            machine.kernel,
            machine.date,
            machine.commit,
            machine.command,
        );
        let path = out.join("footprint-aarch64.md");
        if let Err(e) = std::fs::write(&path, page) {
            eprintln!("bench: {}: {e}", path.display());
        }
        md.push_str(&section);
    }
    let path = out.join("results.md");
    if let Err(e) = std::fs::write(&path, &md) {
        eprintln!("bench: {}: {e}", path.display());
        return ExitCode::from(1);
    }
    println!("{md}");
    if args.verbose {
        eprintln!("bench: wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
