//! Which process wrote a leftover: writers stamp their temporary files and directories with
//! their process id and its start time, so a later run can tell a dead writer's leftovers from a
//! live writer's work (a pid alone can be reused).

/// This process's stamp: `pid start` (the start time in clock ticks since boot, where the OS
/// tells it).
pub fn stamp() -> String {
    let pid = std::process::id();
    format!("{pid} {}", start_time(pid).unwrap_or(0))
}

/// Whether the process that left `stamp` is certainly gone: its pid is not running, or runs a
/// process started at another time. `false` when it cannot be told (so nothing live is removed).
pub fn is_gone(stamp: &str) -> bool {
    let mut parts = stamp.split_whitespace();
    let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let started: Option<u64> = parts.next().and_then(|s| s.parse().ok());
    if !cfg!(target_os = "linux") {
        return false;
    }
    match start_time(pid) {
        None => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Some(now) => started.is_some_and(|s| s != 0 && s != now),
    }
}

/// Start time of `pid` in clock ticks since boot (Linux: field 22 of /proc/<pid>/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        assert!(!is_gone(&stamp()));
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let mut child = child;
        child.wait().unwrap();
        if cfg!(target_os = "linux") {
            assert!(is_gone(&format!("{pid} 0")));
            // A live pid stamped with another start time is a reused pid.
            let me = std::process::id();
            assert!(is_gone(&format!("{me} 1")));
        }
        assert!(!is_gone("not a stamp"));
    }
}
