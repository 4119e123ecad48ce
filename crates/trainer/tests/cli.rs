//! The real `trainer` binary on a small slice: files written, accuracy above chance,
//! `predict --json` and `evaluate` on its output, refusal to clobber an interrupted run,
//! and `kill -9` then `--resume` continuing instead of starting over.

use testkit as common;

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

fn trainer() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.env_remove("FASHION_MNIST_DIR");
    cmd
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("trainer starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn metrics(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report/metrics.json")).unwrap()).unwrap()
}

#[test]
fn trains_a_slice_then_predicts_and_evaluates_its_output() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path();
    run_ok(trainer().args(["--limit", "1500", "--epochs", "2", "--batch-size", "64", "--backend", "cpu", "--out"]).arg(o));
    for f in
        ["cnn.fmw", "baseline.fmw", "report/metrics.json", "report/report.md", "report/learning-curves.svg", "report/confusion-matrix.svg"]
    {
        let len = std::fs::metadata(o.join(f)).unwrap_or_else(|_| panic!("{f} written")).len();
        assert!(len > 100, "{f} is only {len} bytes");
    }
    assert!(!o.join("checkpoint").exists(), "a finished run removes its checkpoint");
    let m = metrics(o);
    let (lr_acc, cnn_acc) = (m["logistic"]["test"]["accuracy"].as_f64().unwrap(), m["cnn"]["test"]["accuracy"].as_f64().unwrap());
    assert!(lr_acc > 0.5 && cnn_acc > 0.5, "accuracy not clearly above chance: LR {lr_acc}, CNN {cnn_acc}");
    assert_eq!(m["train_images"], 1350);
    assert_eq!(m["cnn"]["history"].as_array().unwrap().len(), 2);
    // The weights of both epochs (all calm, the calm finish being as long as the run) were
    // averaged after it: epoch 2 alone, then epochs 1–2.
    let averages = m["cnn"]["averages"].as_array().unwrap();
    assert_eq!(
        averages.iter().map(|a| (a["first_epoch"].as_u64().unwrap(), a["last_epoch"].as_u64().unwrap())).collect::<Vec<_>>(),
        [(2, 2), (1, 2)]
    );
    assert!(averages.iter().all(|a| a["val_accuracy"].as_f64().unwrap() > 0.5), "{averages:?}");
    let md = std::fs::read_to_string(o.join("report/report.md")).unwrap();
    assert!(md.contains("Logistic regression") && md.contains("points"));

    // predict --json: good photos, a bad file; the good ones still run, the exit code says failure.
    let data = trainer::data::load(None).unwrap();
    let photos = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..6 {
        let (bytes, ext) = common::varied_photo(data.test.image(i), i);
        let p = photos.path().join(format!("item{i}.{ext}"));
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    }
    let bad = photos.path().join("notes.png");
    std::fs::write(&bad, "this is text, not a picture").unwrap();
    files.insert(2, bad.clone());
    let out_json = trainer().args(["predict", "--json", "--weights"]).arg(o.join("cnn.fmw")).args(&files).output().unwrap();
    assert!(!out_json.status.success(), "a failed file makes the exit status non-zero");
    let lines: Vec<Value> = String::from_utf8(out_json.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    for (line, file) in lines.iter().zip(&files) {
        assert_eq!(line["file"], file.display().to_string());
        if *file == bad {
            assert!(line["error"].as_str().unwrap().contains("supported formats"), "{line}");
        } else {
            let probs: Vec<f64> = line["probs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(probs.len(), 10);
            assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-3);
            let label = line["label"].as_u64().unwrap() as usize;
            assert!((line["confidence"].as_f64().unwrap() - probs[label]).abs() < 1e-6);
            assert_eq!(line["class"], fashion_model::CLASS_NAMES[label]);
        }
    }

    // evaluate gives the test accuracy the training report recorded.
    let eval = run_ok(trainer().args(["evaluate", "--json", "--backend", "cpu", "--weights"]).arg(o.join("cnn.fmw")));
    let eval: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!((eval["accuracy"].as_f64().unwrap() - cnn_acc).abs() < 1e-9, "{eval} vs {cnn_acc}");
    assert_eq!(eval["images"], 10000);

    // A weights file that is not one: a clear error, no panic.
    let junk = photos.path().join("junk.fmw");
    std::fs::write(&junk, vec![7u8; 1000]).unwrap();
    let e = trainer().args(["evaluate", "--weights"]).arg(&junk).output().unwrap();
    assert!(!e.status.success());
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(stderr.contains("not a weights file") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn kill_9_then_resume_continues_from_the_last_epoch() {
    // With a weight average (burn's steps), so that its state goes through the checkpoint too.
    kill_9_then_resume(&["--weight-average", "0.99"]);
}

#[test]
fn kill_9_then_resume_continues_on_the_hand_written_kernels() {
    // The CNN's default engine on the CPU: its own optimizer state goes through the checkpoint.
    // With the calm finish on the last 2 of the 4 epochs the kill lands before it, where no
    // epoch has competed yet and the best validation loss is still infinite (a checkpoint
    // that once could not be read back: every `cargo xtask train` stopped in its first 34
    // epochs had to start over). With surface photographs on a share of the images, which the
    // resumed run draws again, the same.
    kill_9_then_resume(&["--calm-epochs", "2", "--surface-photos", "0.3", "--photographed-items", "300"]);
}

fn kill_9_then_resume(extra: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let o = out.path();
    let mut args = vec!["--limit", "1200", "--epochs", "4", "--batch-size", "64", "--patience", "10", "--backend", "cpu"];
    args.extend(extra);
    args.push("--out");
    let averaged = extra.contains(&"--weight-average");
    let mut child = trainer().args(&args).arg(o).stderr(Stdio::null()).stdout(Stdio::null()).spawn().unwrap();
    // Wait for the CNN's first epoch checkpoint, then kill the process without warning.
    let state = o.join("checkpoint/cnn-state.json");
    let deadline = Instant::now() + Duration::from_secs(900);
    while !state.exists() {
        assert!(Instant::now() < deadline, "no CNN checkpoint after 15 minutes");
        assert!(child.try_wait().unwrap().is_none(), "trainer ended before it could be killed");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let done = saved["history"].as_array().unwrap().len();
    assert!((1..4).contains(&done), "checkpoint holds {done} epochs");
    assert!(!o.join("cnn.fmw").exists());
    let calm_epochs = extra.iter().position(|a| *a == "--calm-epochs").map(|i| extra[i + 1].parse::<usize>().unwrap());
    if let Some(calm) = calm_epochs {
        assert!(done <= 4 - calm, "killed after {done} epochs, not before the calm finish");
        assert!(saved["best_val_loss"].is_null(), "no epoch competed yet: {}", saved["best_val_loss"]);
    }

    // Without --resume the interrupted run is protected, not overwritten.
    let refused = trainer().args(&args).arg(o).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    if !averaged {
        // The other engine keeps its optimizer state in another form: refused, not mixed.
        let other = trainer().args(&args).arg(o).args(["--resume", "--engine", "burn"]).output().unwrap();
        assert!(!other.status.success());
        assert!(String::from_utf8_lossy(&other.stderr).contains("other settings"), "{}", String::from_utf8_lossy(&other.stderr));
    }

    let resumed = run_ok(trainer().args(&args).arg(o).arg("--resume"));
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(log.contains(&format!("cnn: resuming after epoch {done}")), "{log}");
    assert!(log.contains("baseline: already finished"), "{log}");
    if extra.contains(&"--surface-photos") {
        let found = log.lines().find(|l| l.starts_with("surface photographs: ")).unwrap_or_else(|| panic!("{log}"));
        let count: usize = found["surface photographs: ".len()..].split(' ').next().unwrap().parse().unwrap();
        assert!((250..=300).contains(&count), "{found}");
        assert!(log.contains("30% of the augmented images replaced by their surface photograph"), "{log}");
    }
    let m = metrics(o);
    let history = m["cnn"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "the resumed run completes the planned epochs");
    // The weights of the epochs before the kill were kept for the averages after the run.
    // (Averages span the epochs of the final augmentation only.)
    assert_eq!(m["cnn"]["averages"].as_array().unwrap().len(), calm_epochs.unwrap_or(4));
    // The epochs before the kill are kept, not re-run.
    assert_eq!(history[..done], saved["history"].as_array().unwrap()[..]);
    // Validation scored the average, and the trained weights beside it.
    assert!(history.iter().all(|h| h["live_val_accuracy"].as_f64().is_some_and(|a| a > 0.0) == averaged), "{history:?}");
    assert!(m["cnn"]["test"]["accuracy"].as_f64().unwrap() > 0.5);
}

#[test]
fn the_kernels_refuse_what_they_cannot_train_before_training() {
    let out = tempfile::tempdir().unwrap();
    for extra in [&["--report-cnn"][..], &["--weight-average", "0.99"][..]] {
        let e = trainer()
            .args(["--limit", "600", "--epochs", "1", "--backend", "cpu", "--engine", "kernels"])
            .args(extra)
            .arg("--out")
            .arg(out.path())
            .output()
            .unwrap();
        assert!(!e.status.success());
        let stderr = String::from_utf8_lossy(&e.stderr);
        assert!(stderr.contains("--engine burn") && !stderr.contains("panicked"), "{stderr}");
        assert!(!out.path().join("cnn.fmw").exists());
    }
}

#[test]
fn missing_or_corrupt_data_names_the_file_and_the_fix() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let e = trainer().args(["--epochs", "1", "--out"]).arg(out.path()).arg("--data-dir").arg(empty.path()).output().unwrap();
    assert!(!e.status.success());
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(msg.contains("apt-get install dataset-fashion-mnist"), "{msg}");

    for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::write(empty.path().join(name), b"\x1f\x8b\x08\x00 cut short").unwrap();
    }
    let e = trainer().args(["--epochs", "1", "--out"]).arg(out.path()).arg("--data-dir").arg(empty.path()).output().unwrap();
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && msg.contains("train-images-idx3-ubyte.gz") && msg.contains("gzip"), "{msg}");
    assert!(!msg.contains("panicked"));
}

#[test]
fn unwritable_output_is_reported_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let e = trainer().args(["--epochs", "1", "--out"]).arg(&file).output().unwrap();
    assert!(!e.status.success());
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(msg.contains("output folder") && !msg.contains("panicked"), "{msg}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// A real full disk: a 40 MiB tmpfs mounted in a private mount namespace (`unshare`, so nothing
/// outside this test sees it and it vanishes with the process), holding earlier weights and
/// filled up. Full before the start: refused at once. Full during training: a clear error, the
/// earlier weights untouched, no stray files; after space is freed, `--resume` finishes the run
/// from the saved checkpoint.
#[test]
fn full_disk_keeps_the_previous_weights_and_resume_finishes() {
    let keep = tempfile::tempdir().unwrap();
    let k = keep.path();
    let disk = k.join("disk");
    std::fs::create_dir(&disk).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let script = r#"
        set -u
        mount -t tmpfs -o size=40m fashion-full-disk "$DISK" || exit 97
        cp "$SHIPPED/cnn.fmw" "$SHIPPED/baseline.fmw" "$DISK"/
        fill() { avail=$(df -k --output=avail "$DISK" | tail -n1); head -c $(( (avail - $1) * 1024 )) /dev/zero > "$DISK/filler$1"; }
        run() { "$TRAINER" --limit 300 --epochs 1 --backend cpu --out "$DISK" "$@"; }
        fill 0
        run > /dev/null 2> "$KEEP/at-start.stderr"; echo $? > "$KEEP/at-start.rc"
        rm "$DISK/filler0"; fill 1024
        run > /dev/null 2> "$KEEP/during.stderr"; echo $? > "$KEEP/during.rc"
        ls -A "$DISK" "$DISK/checkpoint" > "$KEEP/during.listing"
        mkdir "$KEEP/after-failure" && cp "$DISK"/*.fmw "$KEEP/after-failure"/
        rm "$DISK/filler1024"
        run --resume > /dev/null 2> "$KEEP/resume.stderr"; echo $? > "$KEEP/resume.rc"
        cp "$DISK/cnn.fmw" "$KEEP/resumed-cnn.fmw"
    "#;
    let out = Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c", script])
        .env("DISK", &disk)
        .env("KEEP", k)
        .env("SHIPPED", &shipped)
        .env("TRAINER", env!("CARGO_BIN_EXE_trainer"))
        .env_remove("FASHION_MNIST_DIR")
        .output()
        .expect("unshare (util-linux) runs");
    assert!(
        out.status.success(),
        "could not mount a small tmpfs in a private mount namespace (needs root or unprivileged user namespaces): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(k.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rc = |name: &str| read(name).trim().parse::<i32>().unwrap();

    let at_start = read("at-start.stderr");
    assert_ne!(rc("at-start.rc"), 0);
    assert!(at_start.contains("is full: free some space") && at_start.contains("not writable"), "{at_start}");
    assert!(!at_start.contains("data:"), "the full disk is found before the data is loaded: {at_start}");

    let during = read("during.stderr");
    assert_ne!(rc("during.rc"), 0);
    assert!(during.contains("baseline epoch  1"), "the logistic regression ran and was saved: {during}");
    assert!(
        during.contains("saving the cnn checkpoint after epoch 1") && during.contains("is full") && during.contains("--resume"),
        "{during}"
    );
    assert!(!during.contains("panicked"), "{during}");
    for name in ["cnn.fmw", "baseline.fmw"] {
        assert_eq!(
            std::fs::read(k.join("after-failure").join(name)).unwrap(),
            std::fs::read(shipped.join(name)).unwrap(),
            "{name} changed"
        );
    }
    // No partial file left behind; the logistic regression's finished epoch is kept.
    let listing = read("during.listing");
    let mut names: Vec<&str> = listing.lines().filter(|l| !l.is_empty() && !l.ends_with(':')).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "baseline-best-e1.bpk",
            "baseline-e1.model",
            "baseline-e1.optim",
            "baseline-state.json",
            "baseline.fmw",
            "checkpoint",
            "cnn.fmw",
            "filler1024"
        ],
        "{listing}"
    );

    let resumed = read("resume.stderr");
    assert_eq!(rc("resume.rc"), 0, "{resumed}");
    assert!(resumed.contains("baseline: already finished"), "the saved logistic regression was reused: {resumed}");
    let new_cnn = std::fs::read(k.join("resumed-cnn.fmw")).unwrap();
    assert_ne!(new_cnn, std::fs::read(shipped.join("cnn.fmw")).unwrap(), "the resumed run wrote its own weights");
    assert!(new_cnn.len() > 100_000);
}
