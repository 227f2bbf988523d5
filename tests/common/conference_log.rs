//! The conference log as `sentralbord conference log TENANT` prints it (tests/adhoc.rs,
//! tests/merge.rs).

/// One conference of `sentralbord conference log`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedConference {
    /// Its first line: times, place (`ad hoc` or `room "..."`), duration, participants.
    pub summary: String,
    /// Its participant rows, in the printed order.
    pub participants: Vec<LoggedParticipant>,
}

/// One participant row of a logged conference.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedParticipant {
    /// NUMBER: the number it called from or was reached at.
    pub number: String,
    /// NAME, `-` when none.
    pub name: String,
    /// USER: the user's extension, `-` for a non-user.
    pub user: String,
    /// JOINED: `YYYY-MM-DD HH:MM:SS`.
    pub joined: String,
    /// LEFT: `YYYY-MM-DD HH:MM:SS`.
    pub left: String,
    /// ENDED: `left`, `kicked` or `room-ended`.
    pub ended: String,
}

/// Parses `conference log` output: conferences separated by blank lines, each a summary
/// line and an indented table cut at its header's column starts.
pub fn parse_conference_log(out: &str) -> Vec<LoggedConference> {
    if out.trim() == "no conferences" {
        return Vec::new();
    }
    out.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let summary = lines.next().unwrap_or_default().trim().to_owned();
            let mut participants = Vec::new();
            if let Some(header) = lines.next() {
                let header: Vec<char> = header.chars().collect();
                // Header names have no spaces: each word starts a column.
                let starts: Vec<usize> = (0..header.len())
                    .filter(|&i| header[i] != ' ' && (i == 0 || header[i - 1] == ' '))
                    .collect();
                let names: Vec<String> = starts
                    .iter()
                    .map(|&s| header[s..].iter().take_while(|c| **c != ' ').collect())
                    .collect();
                for line in lines {
                    let chars: Vec<char> = line.chars().collect();
                    let cell = |name: &str| -> String {
                        let Some(k) = names.iter().position(|n| n == name) else {
                            return String::new();
                        };
                        let from = starts[k].min(chars.len());
                        let to = starts
                            .get(k + 1)
                            .map_or(chars.len(), |&e| e.min(chars.len()));
                        chars[from..to].iter().collect::<String>().trim().to_owned()
                    };
                    participants.push(LoggedParticipant {
                        number: cell("NUMBER"),
                        name: cell("NAME"),
                        user: cell("USER"),
                        joined: cell("JOINED"),
                        left: cell("LEFT"),
                        ended: cell("ENDED"),
                    });
                }
            }
            LoggedConference {
                summary,
                participants,
            }
        })
        .collect()
}
