//! Norwegian (bokmål) announcements assembled from prompts: queue position, expected wait.
//!
//! Numbers 1..=99 are said from "digits/1".."digits/20" and the tens "digits/30".."digits/90",
//! the modern way ("tjueen": "digits/20" then "digits/1"). Larger values are said as
//! "more than ninety-nine". The helpers return prompt names; look them up with
//! [`super::PromptLibrary::playlist`].

/// Names of the prompts the helpers use (all in the built-in set).
pub mod names {
    /// "Du er nummer"
    pub const QUEUE_POSITION: &str = "queue/position";
    /// "i køen."
    pub const QUEUE_IN_QUEUE: &str = "queue/in-queue";
    /// "Det er mer enn"
    pub const QUEUE_MORE_THAN: &str = "queue/more-than";
    /// "foran deg i køen."
    pub const QUEUE_AHEAD_OF_YOU: &str = "queue/ahead-of-you";
    /// "Forventet ventetid er"
    pub const QUEUE_EXPECTED_WAIT: &str = "queue/expected-wait";
    /// "under ett minutt."
    pub const TIME_LESS_THAN_A_MINUTE: &str = "time/less-than-a-minute";
    /// "minutt."
    pub const TIME_MINUTE: &str = "time/minute";
    /// "minutter."
    pub const TIME_MINUTES: &str = "time/minutes";
    /// "sekunder."
    pub const TIME_SECONDS: &str = "time/seconds";
    /// "mer enn"
    pub const MORE_THAN: &str = "common/more-than";
    /// "ett" (neuter one: "ett minutt").
    pub const DIGIT_ONE_NEUTER: &str = "digits/1-neuter";
    /// Music on hold played when a tenant has chosen none.
    pub const MOH_DEFAULT: &str = "moh/default";
}

/// The largest number said exactly; above it the helpers say "more than" this.
pub const MAX_SPOKEN_NUMBER: u32 = 99;

const DIGITS: [&str; 21] = [
    "digits/0", // never produced: the helpers say no number below 1
    "digits/1",
    "digits/2",
    "digits/3",
    "digits/4",
    "digits/5",
    "digits/6",
    "digits/7",
    "digits/8",
    "digits/9",
    "digits/10",
    "digits/11",
    "digits/12",
    "digits/13",
    "digits/14",
    "digits/15",
    "digits/16",
    "digits/17",
    "digits/18",
    "digits/19",
    "digits/20",
];

const TENS: [&str; 10] = [
    "digits/0", // unused
    "digits/10",
    "digits/20",
    "digits/30",
    "digits/40",
    "digits/50",
    "digits/60",
    "digits/70",
    "digits/80",
    "digits/90",
];

/// Every prompt name the helpers in this module can return.
pub fn all_prompt_names() -> Vec<&'static str> {
    let mut all = vec![
        names::QUEUE_POSITION,
        names::QUEUE_IN_QUEUE,
        names::QUEUE_MORE_THAN,
        names::QUEUE_AHEAD_OF_YOU,
        names::QUEUE_EXPECTED_WAIT,
        names::TIME_LESS_THAN_A_MINUTE,
        names::TIME_MINUTE,
        names::TIME_MINUTES,
        names::TIME_SECONDS,
        names::MORE_THAN,
        names::DIGIT_ONE_NEUTER,
        names::MOH_DEFAULT,
    ];
    all.extend(DIGITS.iter().skip(1));
    all.extend(TENS.iter().skip(3));
    all
}

/// Appends the prompts that say `n` (1..=99; 0 is said as 1, larger values as 99).
pub fn push_number(n: u32, out: &mut Vec<&'static str>) {
    let n = n.clamp(1, MAX_SPOKEN_NUMBER) as usize;
    if let Some(&word) = DIGITS.get(n) {
        out.push(word);
        return;
    }
    if let Some(&tens) = TENS.get(n / 10) {
        out.push(tens);
    }
    if let Some(&unit) = DIGITS.get(n % 10).filter(|_| n % 10 != 0) {
        out.push(unit);
    }
}

/// "Du er nummer N i køen." for a 1-based queue position; from 100 on,
/// "Det er mer enn nittini foran deg i køen." (position 0 is said as 1).
pub fn queue_position(position: u32) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(4);
    if position > MAX_SPOKEN_NUMBER {
        out.push(names::QUEUE_MORE_THAN);
        push_number(MAX_SPOKEN_NUMBER, &mut out);
        out.push(names::QUEUE_AHEAD_OF_YOU);
    } else {
        out.push(names::QUEUE_POSITION);
        push_number(position, &mut out);
        out.push(names::QUEUE_IN_QUEUE);
    }
    out
}

/// "Forventet ventetid er ..." for an estimate in seconds: under a minute it is rounded up
/// to ten seconds ("tretti sekunder"; 0 says "under ett minutt"), otherwise to the nearest
/// minute ("ett minutt", "fem minutter"); above 99 minutes, "mer enn nittini minutter".
pub fn expected_wait(seconds: u32) -> Vec<&'static str> {
    let mut out = vec![names::QUEUE_EXPECTED_WAIT];
    if seconds == 0 {
        out.push(names::TIME_LESS_THAN_A_MINUTE);
        return out;
    }
    let tens_of_seconds = seconds.div_ceil(10);
    if tens_of_seconds < 6 {
        push_number(tens_of_seconds * 10, &mut out);
        out.push(names::TIME_SECONDS);
        return out;
    }
    let minutes = (seconds.saturating_add(30) / 60).max(1);
    match minutes {
        1 => {
            out.push(names::DIGIT_ONE_NEUTER);
            out.push(names::TIME_MINUTE);
        }
        2..=MAX_SPOKEN_NUMBER => {
            push_number(minutes, &mut out);
            out.push(names::TIME_MINUTES);
        }
        _ => {
            out.push(names::MORE_THAN);
            push_number(MAX_SPOKEN_NUMBER, &mut out);
            out.push(names::TIME_MINUTES);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: u32) -> Vec<&'static str> {
        let mut out = Vec::new();
        push_number(n, &mut out);
        out
    }

    #[test]
    fn numbers_are_said_the_modern_way() {
        assert_eq!(number(1), ["digits/1"]);
        assert_eq!(number(13), ["digits/13"]);
        assert_eq!(number(20), ["digits/20"]);
        assert_eq!(number(21), ["digits/20", "digits/1"]);
        assert_eq!(number(40), ["digits/40"]);
        assert_eq!(number(57), ["digits/50", "digits/7"]);
        assert_eq!(number(99), ["digits/90", "digits/9"]);
        assert_eq!(number(0), ["digits/1"]);
        assert_eq!(number(1000), ["digits/90", "digits/9"]);
    }

    #[test]
    fn queue_positions() {
        assert_eq!(
            queue_position(3),
            ["queue/position", "digits/3", "queue/in-queue"]
        );
        assert_eq!(
            queue_position(42),
            ["queue/position", "digits/40", "digits/2", "queue/in-queue"]
        );
        assert_eq!(
            queue_position(100),
            [
                "queue/more-than",
                "digits/90",
                "digits/9",
                "queue/ahead-of-you"
            ]
        );
        assert_eq!(queue_position(u32::MAX), queue_position(100));
    }

    #[test]
    fn expected_waits() {
        let wait = |s| expected_wait(s)[1..].to_vec();
        assert_eq!(
            expected_wait(0),
            ["queue/expected-wait", "time/less-than-a-minute"]
        );
        assert_eq!(wait(1), ["digits/10", "time/seconds"]);
        assert_eq!(wait(25), ["digits/30", "time/seconds"]);
        assert_eq!(wait(50), ["digits/50", "time/seconds"]);
        assert_eq!(wait(51), ["digits/1-neuter", "time/minute"]);
        assert_eq!(wait(89), ["digits/1-neuter", "time/minute"]);
        assert_eq!(wait(90), ["digits/2", "time/minutes"]);
        assert_eq!(wait(23 * 60), ["digits/20", "digits/3", "time/minutes"]);
        assert_eq!(
            wait(99 * 60 + 29),
            ["digits/90", "digits/9", "time/minutes"]
        );
        assert_eq!(
            wait(99 * 60 + 30),
            ["common/more-than", "digits/90", "digits/9", "time/minutes"]
        );
        assert_eq!(wait(u32::MAX), wait(100 * 60));
    }

    #[test]
    fn every_name_the_helpers_return_is_listed() {
        let all = all_prompt_names();
        let mut produced: Vec<&str> = Vec::new();
        for n in 0..=200 {
            produced.extend(queue_position(n));
        }
        for s in (0..=7000).step_by(7).chain([u32::MAX]) {
            produced.extend(expected_wait(s));
        }
        for name in produced {
            assert!(all.contains(&name), "{name} missing from all_prompt_names");
        }
    }
}
