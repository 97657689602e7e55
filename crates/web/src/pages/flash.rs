//! One-shot messages shown at the top of the next page: "Welcome…", "Listed.", "Saved.",
//! "Withdrawn.", "Paid.", "Cancelled.", "Event created.", "Your seat is held…", or the API's
//! refusal of a card or a seat.
//!
//! A form that succeeds redirects (`303`) and the message rides along in a short-lived
//! cookie (`flash`, `HttpOnly`, 60 s), which the page that shows it clears ([`super::layout`]
//! does both). A cookie rather than the address: a reload or a shared link does not say it
//! again, and no link can make the site say anything: a success is one of our own
//! sentences, named by a code, and a refusal's text is only ever set by this server and
//! escaped like every other value when shown. It needs no script.

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{decode, encode};

/// The cookie's name.
pub const COOKIE: &str = "flash";
/// How long a message waits for its page.
const MAX_AGE_SECONDS: u32 = 60;
/// The longest refusal kept (an API message can be long).
const MAX_CHARS: usize = 600;

/// What went through, each with its sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Welcome,
    Listed,
    Saved,
    Withdrawn,
    Paid,
    Cancelled,
    EventCreated,
    SeatHeld,
}

impl Done {
    const ALL: [Done; 8] = [
        Done::Welcome,
        Done::Listed,
        Done::Saved,
        Done::Withdrawn,
        Done::Paid,
        Done::Cancelled,
        Done::EventCreated,
        Done::SeatHeld,
    ];

    fn code(self) -> &'static str {
        match self {
            Done::Welcome => "welcome",
            Done::Listed => "listed",
            Done::Saved => "saved",
            Done::Withdrawn => "withdrawn",
            Done::Paid => "paid",
            Done::Cancelled => "cancelled",
            Done::EventCreated => "event",
            Done::SeatHeld => "seat",
        }
    }

    pub fn sentence(self) -> &'static str {
        match self {
            Done::Welcome => "Welcome to Ticketing! Your account is ready and you are signed in.",
            Done::Listed => "Listed. Your ticket is on sale.",
            Done::Saved => "Saved.",
            Done::Withdrawn => "Withdrawn. The ticket is no longer on sale.",
            Done::Paid => "Paid. Thank you!",
            Done::Cancelled => "Cancelled. The ticket is back on sale.",
            Done::EventCreated => "Event created. Its seats are on sale.",
            Done::SeatHeld => "Your seat is held. Pay before the time runs out to keep it.",
        }
    }
}

/// A message for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    Done(Done),
    /// The API refused something, in its words.
    Refused(String),
}

impl Flash {
    /// What the page says.
    pub fn text(&self) -> &str {
        match self {
            Flash::Done(done) => done.sentence(),
            Flash::Refused(text) => text,
        }
    }

    /// Whether it is good news (styled as such).
    pub fn ok(&self) -> bool {
        matches!(self, Flash::Done(_))
    }

    fn cookie_value(&self) -> String {
        match self {
            Flash::Done(done) => format!("ok.{}", done.code()),
            Flash::Refused(text) => {
                let text: String = text.chars().take(MAX_CHARS).collect();
                format!("no.{}", encode(&text))
            }
        }
    }

    fn from_cookie_value(value: &str) -> Option<Flash> {
        let (kind, rest) = value.split_once('.')?;
        match kind {
            "ok" => Done::ALL
                .into_iter()
                .find(|d| d.code() == rest)
                .map(Flash::Done),
            "no" => {
                let text: String = decode(rest)?.chars().take(MAX_CHARS).collect();
                (!text.trim().is_empty()).then_some(Flash::Refused(text))
            }
            _ => None,
        }
    }

    /// The message a request carries in its cookie, if any (one that cannot be read counts
    /// as none).
    pub fn from_headers(headers: &HeaderMap) -> Option<Flash> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(&format!("{COOKIE}=")))
            .and_then(Flash::from_cookie_value)
    }

    /// The `Set-Cookie` that hands this message to the next page.
    pub fn set_cookie(&self, https: bool) -> Option<HeaderValue> {
        let secure = if https { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={}; Path=/; Max-Age={MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax{secure}",
            self.cookie_value()
        ))
        .ok()
    }
}

/// The `Set-Cookie` that forgets a message once shown.
pub fn clear_cookie(https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("a valid header value")
}

/// `303 See Other` to `to`, whose page then says `flash` (the cookie is set on the way out,
/// by [`super::layout`], which knows whether the site is served over HTTPS).
pub fn redirect(to: &str, flash: Flash) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.extensions_mut().insert(flash);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carried(flash: &Flash) -> Option<Flash> {
        let set = flash.set_cookie(false).unwrap();
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("session=abc; {pair}")).unwrap(),
        );
        Flash::from_headers(&headers)
    }

    #[test]
    fn every_message_comes_back_as_it_was_sent() {
        for done in Done::ALL {
            assert_eq!(carried(&Flash::Done(done)), Some(Flash::Done(done)));
        }
        let refused = Flash::Refused("Your card was declined; try <another> one & \"go\".".into());
        assert_eq!(carried(&refused), Some(refused));
    }

    #[test]
    fn a_cookie_names_only_our_own_sentences() {
        let cookie = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("flash={value}")).unwrap(),
            );
            Flash::from_headers(&headers)
        };
        assert_eq!(cookie("ok.paid"), Some(Flash::Done(Done::Paid)));
        assert_eq!(cookie("ok.<script>"), None);
        assert_eq!(cookie("ok.Hacked"), None);
        assert_eq!(cookie("xx.paid"), None);
        assert_eq!(cookie("no.%ZZ"), None);
        assert_eq!(cookie("no."), None);
        assert_eq!(cookie("garbage"), None);
    }

    #[test]
    fn a_long_refusal_is_cut_and_the_cookie_says_how_long_it_lives() {
        let long = Flash::Refused("é".repeat(5_000));
        let set = long.set_cookie(true).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.len() < 4_000, "fits in a cookie: {}", set.len());
        assert!(set.contains("Max-Age=60; HttpOnly; SameSite=Lax; Secure"));
        assert_eq!(
            carried(&long).map(|f| f.text().chars().count()),
            Some(MAX_CHARS)
        );
        assert!(clear_cookie(false).to_str().unwrap().contains("Max-Age=0"));
    }
}
