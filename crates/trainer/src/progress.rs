//! Progress bars with ETA on a terminal; plain log lines otherwise (CI, pipes, tests).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: MultiProgress,
    quiet_bars: bool,
}

impl Progress {
    pub fn new() -> Self {
        let quiet_bars = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let multi = MultiProgress::new();
        if quiet_bars {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        Self { multi, quiet_bars }
    }

    /// A log line that does not tear the bars.
    pub fn note(&self, line: &str) {
        if self.quiet_bars {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    pub fn epochs(&self, total: u64, done: u64, name: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total).with_position(done));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>4} epochs [{bar:30}] {pos}/{len} elapsed {elapsed_precise} eta {eta_precise}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar
    }

    pub fn batches(&self, total: u64, epoch: usize) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix:>2} [{bar:30}] {pos}/{len} batches {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        bar
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
