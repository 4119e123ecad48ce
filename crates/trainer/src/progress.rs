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

    /// One bar for a whole training phase, counted in batches so that its ETA covers every
    /// planned epoch (early stopping may end sooner). Epochs restored from a checkpoint are
    /// shown as done but do not count towards the speed.
    pub fn phase(&self, name: &str, epochs: usize, done_epochs: usize, steps_per_epoch: usize) -> ProgressBar {
        let total = (epochs * steps_per_epoch) as u64;
        let bar = self.multi.add(ProgressBar::new(total).with_position((done_epochs * steps_per_epoch) as u64));
        bar.set_style(style("{percent:>3}%"));
        bar.set_prefix(name.to_string());
        bar.set_message(format!("{epochs} epochs"));
        bar.reset_eta();
        bar
    }

    /// A bar for `total` items of work before training (e.g. the surface photographs).
    pub fn task(&self, name: &str, total: usize) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total as u64));
        bar.set_style(style("{pos}/{len}"));
        bar.set_prefix(name.to_string());
        bar
    }
}

/// Every bar's look; `amount` says how far it is (a percentage, or a count of items).
fn style(amount: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!("{{prefix:>8}} [{{bar:30}}] {amount} {{msg}} elapsed {{elapsed_precise}} eta {{eta_precise}}"))
        .expect("valid template")
        .progress_chars("=> ")
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
