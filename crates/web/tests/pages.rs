//! The pages over plain HTTP against the whole platform in this process: redirects to
//! sign-in, the CSRF guard, the API's errors next to the right fields, operators' refunds,
//! and the operators' console.

mod support;

use std::time::Duration;

use reqwest::{StatusCode, header};
use support::{Stack, client};
use ticketing_common::testing::OPERATOR_EMAIL;
use ticketing_expiration::worker::now_ms;
use uuid::Uuid;

async fn signed_up(stack: &Stack, email: &str) -> reqwest::Client {
    let browser = client();
    let response = browser
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", email), ("password", "secret1"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers().get(header::SET_COOKIE).is_some(),
        "session cookie handed on"
    );
    browser
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_back() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let browser = client();
    for path in [
        "/tickets/new",
        "/orders",
        "/orders/0190a0a0-0000-7000-8000-000000000000",
    ] {
        let response = browser.get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let location = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            location.starts_with("/signin?next=/"),
            "{path} -> {location}"
        );
    }

    // Signing in sends the visitor to `next`, a path on this site only.
    signed_up(&stack, "back@example.com").await;
    let browser = client();
    let response = browser
        .post(stack.url("/signin"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "back@example.com"),
            ("password", "secret1"),
            ("next", "/orders"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/orders");
    let page = browser.get(stack.url("/orders")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("No orders yet"));

    let response = client()
        .post(stack.url("/signin"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "back@example.com"),
            ("password", "secret1"),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::LOCATION], "/");
}

#[tokio::test]
async fn a_cross_origin_form_post_is_refused_and_changes_nothing() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let browser = signed_up(&stack, "csrf@example.com").await;

    let forged = browser
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[("title", "Forged"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("sent from another site")
    );

    let no_origin = browser
        .post(stack.url("/tickets/new"))
        .form(&[("title", "Forged"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);

    // The same host over another scheme is another origin: an http page cannot post to an
    // https site, nor the other way round.
    let other_scheme = browser
        .post(stack.url("/tickets/new"))
        .header(
            header::ORIGIN,
            stack.origin().replace("http://", "https://"),
        )
        .form(&[("title", "Forged"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(other_scheme.status(), StatusCode::FORBIDDEN);

    let forged_signup = client()
        .post(stack.url("/signup"))
        .header(header::REFERER, "https://evil.example/page")
        .form(&[("email", "victim@example.com"), ("password", "secret1")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged_signup.status(), StatusCode::FORBIDDEN);
    assert!(forged_signup.headers().get(header::SET_COOKIE).is_none());

    let home = browser
        .get(stack.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!home.contains("Forged"), "nothing was listed");

    // The same post from our own page goes through.
    let ours = browser
        .post(stack.url("/tickets/new"))
        .header(header::REFERER, stack.url("/tickets/new"))
        .form(&[("title", "Genuine"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), StatusCode::SEE_OTHER);
}

/// The text of the element `<p class="error" id="{id}">…</p>`, if there is one.
fn error_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = html[start..].find("</p>")? + start;
    Some(html[start..end].to_owned())
}

#[tokio::test]
async fn api_errors_are_shown_next_to_their_fields() {
    let stack = Stack::start(Duration::from_secs(900)).await;

    // Sign-up: a bad e-mail and a short password, each next to its own input.
    let response = client()
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", "not-an-email"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let html = response.text().await.unwrap();
    assert!(
        error_text(&html, "email-error").is_some_and(|m| !m.is_empty()),
        "{html}"
    );
    assert!(
        error_text(&html, "password-error").is_some_and(|m| !m.is_empty()),
        "{html}"
    );
    assert!(
        html.contains("value=\"not-an-email\""),
        "the e-mail is kept"
    );

    // A registered e-mail is refused in words.
    signed_up(&stack, "taken@example.com").await;
    let response = client()
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", "taken@example.com"), ("password", "secret1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("class=\"alert\"") || error_text(&html, "email-error").is_some(),
        "{html}"
    );

    // Sign-in with a wrong password: one message, no session.
    let response = client()
        .post(stack.url("/signin"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", "taken@example.com"), ("password", "wrong-one")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    assert!(response.text().await.unwrap().contains("role=\"alert\""));

    // Selling: empty title and a negative price.
    let seller = signed_up(&stack, "seller@example.com").await;
    let response = seller
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", "   "), ("price", "-5")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(error_text(&html, "title-error").is_some(), "{html}");
    assert!(error_text(&html, "price-error").is_some(), "{html}");
    assert!(html.contains("value=\"-5\""), "the typed price is kept");
}

#[tokio::test]
async fn the_home_page_pages_through_tickets_and_has_an_empty_state() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let home = client().get(stack.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(
        home.text()
            .await
            .unwrap()
            .contains("No tickets on sale right now")
    );

    let seller = signed_up(&stack, "many@example.com").await;
    for i in 0..21 {
        let listed = seller
            .post(stack.url("/api/tickets"))
            .json(&serde_json::json!({"title": format!("Show number {i:02}"), "price": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::CREATED);
    }
    let first = client()
        .get(stack.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(first.matches("class=\"ticket-row\"").count(), 20);
    assert!(first.contains("Show number 20"), "newest first");
    let start = first.find("href=\"/?before=").expect("a next-page link") + 6;
    let end = first[start..].find('"').unwrap() + start;
    let second = client()
        .get(stack.url(&first[start..end]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(second.matches("class=\"ticket-row\"").count(), 1);
    assert!(second.contains("Show number 00"));
    assert!(!second.contains("?before="), "no further page");
}

/// Lists a ticket as `seller` and buys it as a fresh buyer; returns the buyer, the order
/// page's path and its HTML.
async fn an_order_page(
    stack: &Stack,
    seller: &str,
    buyer: &str,
) -> (reqwest::Client, String, String) {
    let seller = signed_up(stack, seller).await;
    let listed = seller
        .post(stack.url("/api/tickets"))
        .json(&serde_json::json!({"title": "Card Form Night", "price": 15}))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::CREATED);
    let ticket: serde_json::Value = listed.json().await.unwrap();
    let ticket_id = ticket["id"].as_str().expect("ticket id");
    let buyer = signed_up(stack, buyer).await;
    let purchased = buyer
        .post(stack.url(&format!("/tickets/{ticket_id}/purchase")))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(purchased.status(), StatusCode::SEE_OTHER);
    let order = purchased.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(order.starts_with("/orders/"), "{order}");
    let page = buyer.get(stack.url(&order)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    (buyer, order, html)
}

#[tokio::test]
async fn the_order_page_offers_stripes_card_element_or_the_test_cards() {
    let stack = Stack::start_with(Duration::from_secs(900), Some("pk_test_example")).await;
    let (_, _, html) = an_order_page(
        &stack,
        "stripe-seller@example.com",
        "stripe-buyer@example.com",
    )
    .await;
    assert!(html.contains("<div id=\"card-element\""), "{html}");
    assert!(
        html.contains("<script src=\"https://js.stripe.com/v3/\" async"),
        "{html}"
    );
    assert!(
        html.contains("data-stripe-key=\"pk_test_example\""),
        "{html}"
    );
    assert!(html.contains("id=\"stripe-unavailable\""), "{html}");
    assert!(
        html.contains("The card form is loaded from Stripe and could not load"),
        "{html}"
    );
    assert!(html.contains("type=\"hidden\" name=\"token\""), "{html}");
    assert!(
        !html.contains("tok_visa") && !html.contains("card-success"),
        "no test cards with Stripe: {html}"
    );
    drop(stack);

    let stack = Stack::start(Duration::from_secs(900)).await;
    let (_, _, html) =
        an_order_page(&stack, "dev-seller@example.com", "dev-buyer@example.com").await;
    assert!(html.contains("id=\"card-success\""), "{html}");
    assert!(html.contains("id=\"card-declined\""), "{html}");
    assert!(!html.contains("js.stripe.com/v3"), "{html}");
    assert!(!html.contains("card-element"), "{html}");
}

/// Asserts the security headers of a page: a policy with no inline script and no framing,
/// `nosniff`, a referrer policy, and no caching.
fn assert_secure_page(path: &str, headers: &header::HeaderMap) {
    let policy = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
    assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{path}: {policy}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin", "{path}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
}

/// Every `<script>` tag of a page: each must load a file (no inline script).
fn inline_scripts(html: &str) -> Vec<String> {
    html.match_indices("<script")
        .map(|(i, _)| html[i..html[i..].find('>').map_or(html.len(), |e| i + e + 1)].to_owned())
        .filter(|tag| !tag.contains(" src="))
        .collect()
}

#[tokio::test]
async fn pages_send_security_headers_and_no_inline_script() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, html) = an_order_page(
        &stack,
        "headers-seller@example.com",
        "headers-buyer@example.com",
    )
    .await;
    assert!(
        html.contains("<script src=\"/assets/countdown.js\""),
        "{html}"
    );

    for path in ["/", "/signin", "/orders", order.as_str(), "/tickets/new"] {
        let page = buyer.get(stack.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_secure_page(path, page.headers());
        let html = page.text().await.unwrap();
        assert_eq!(inline_scripts(&html), Vec::<String>::new(), "{path}");
    }
    let script = client()
        .get(stack.url("/assets/countdown.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        script.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .starts_with("public")
    );
    drop(stack);

    // With Stripe's card element, Stripe's script and frames are allowed, and only then.
    let stack = Stack::start_with(Duration::from_secs(900), Some("pk_test_example")).await;
    let (buyer, order, _) =
        an_order_page(&stack, "csp-seller@example.com", "csp-buyer@example.com").await;
    let page = buyer.get(stack.url(&order)).send().await.unwrap();
    assert_secure_page(&order, page.headers());
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("script-src 'self' https://js.stripe.com"),
        "{policy}"
    );
    assert!(
        policy.contains("frame-src https://js.stripe.com"),
        "{policy}"
    );
}

/// A browser whose connections come from `address` (another loopback address: another
/// visitor).
fn visitor_at(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(address))
        .build()
        .unwrap()
}

#[tokio::test]
async fn web_sign_ins_count_against_each_visitors_own_budget() {
    let stack = Stack::configured(support::Config {
        window: Duration::from_secs(900),
        stripe_publishable_key: None,
        rate_limit_per_minute: 3,
        expiration_workers: 1,
    })
    .await;
    signed_up(&stack, "limited@example.com").await;
    let guesser = visitor_at([127, 0, 0, 2]);
    let signin = |browser: &reqwest::Client, password: &'static str| {
        browser
            .post(stack.url("/signin"))
            .header(header::ORIGIN, stack.origin())
            .form(&[("email", "limited@example.com"), ("password", password)])
            .send()
    };

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(signin(&guesser, "wrong").await.unwrap().status());
    }
    let fourth = signin(&guesser, "secret1").await.unwrap();
    let other = signin(&visitor_at([127, 0, 0, 3]), "secret1")
        .await
        .unwrap();

    assert_eq!(statuses, [StatusCode::BAD_REQUEST; 3]);
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        other.status(),
        StatusCode::SEE_OTHER,
        "another visitor's sign-in through the same web pages is not refused"
    );
}

#[tokio::test]
async fn signing_out_on_the_web_revokes_the_session_a_copied_cookie_carries() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let browser = client();
    let signup = browser
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "copied@example.com"),
            ("password", "secret1"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let copy = signup.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let with_copy = |path: &str| {
        client()
            .get(stack.url(path))
            .header(header::COOKIE, copy.clone())
            .send()
    };
    assert_eq!(with_copy("/orders").await.unwrap().status(), StatusCode::OK);

    let signout = browser
        .post(stack.url("/signout"))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap();

    assert_eq!(signout.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        with_copy("/orders").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let me: serde_json::Value = with_copy("/api/users/currentuser")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, serde_json::json!({"currentUser": null}));
}

/// Pays the order at `order` as `buyer` with the success card, through the order page's form,
/// and waits until the order page says it is paid.
async fn pay(stack: &Stack, buyer: &reqwest::Client, order: &str) {
    let paid = buyer
        .post(stack.url(&format!("{order}/pay")))
        .header(header::ORIGIN, stack.origin())
        .form(&[("card", "tok_visa")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    page_until(stack, buyer, order, "Paid", |html| has_status(html, "Paid")).await;
}

/// GETs `path` as `browser`, which must answer 200, and returns its HTML.
async fn page(stack: &Stack, browser: &reqwest::Client, path: &str) -> String {
    let page = browser.get(stack.url(path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{path}");
    page.text().await.unwrap()
}

/// GETs `path` until its HTML satisfies `check` (an effect that travels by events), and
/// returns that HTML.
async fn page_until(
    stack: &Stack,
    browser: &reqwest::Client,
    path: &str,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let html = page(stack, browser, path).await;
        if check(&html) {
            return html;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never showed {what}:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether an order page's status badge reads `label`.
fn has_status(html: &str, label: &str) -> bool {
    html.contains(&format!("id=\"status\">{label}</span>"))
}

/// Whether an order page offers to pay or cancel.
fn offers_pay_or_cancel(html: &str) -> bool {
    html.contains("id=\"pay\"") || html.contains("id=\"cancel\"") || html.contains("/cancel\"")
}

/// Whether an order page offers a refund.
fn offers_refund(html: &str) -> bool {
    html.contains("id=\"refund\"") || html.contains("/refund\"")
}

/// The path of the ticket an order page links to.
fn ticket_of(html: &str) -> String {
    let start = html.find("href=\"/tickets/").expect("a link to the ticket") + 6;
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// Posts the refund confirmation of `order` as `browser`, from our own page.
async fn post_refund(stack: &Stack, browser: &reqwest::Client, order: &str) -> reqwest::Response {
    browser
        .post(stack.url(&format!("{order}/refund")))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_operator_refunds_a_buyers_paid_order_after_confirming_and_the_buyer_sees_it_refunded() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) = an_order_page(
        &stack,
        "refund-seller@example.com",
        "refund-buyer@example.com",
    )
    .await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;

    // Unpaid: the operator sees the order, without the buyer's controls, and nothing to refund.
    let html = page(&stack, &operator, &order).await;
    assert!(has_status(&html, "Awaiting payment"), "{html}");
    assert!(!offers_pay_or_cancel(&html), "{html}");
    assert!(!offers_refund(&html), "{html}");
    let early = operator
        .get(stack.url(&format!("{order}/refund")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        early.status(),
        StatusCode::SEE_OTHER,
        "nothing to refund yet"
    );
    assert_eq!(early.headers()[header::LOCATION], order.as_str());

    pay(&stack, &buyer, &order).await;

    // Paid: a Refund link, still no Pay or Cancel; the ticket is not called the operator's.
    let html = page(&stack, &operator, &order).await;
    assert!(has_status(&html, "Paid"), "{html}");
    assert!(
        html.contains(&format!("href=\"{order}/refund\" id=\"refund\"")),
        "{html}"
    );
    assert!(!offers_pay_or_cancel(&html), "{html}");
    let ticket = page(&stack, &operator, &ticket_of(&html)).await;
    assert!(
        !ticket.contains("Sold to you") && !ticket.contains("See your order"),
        "{ticket}"
    );

    // The link asks first; only the confirmation's form refunds.
    let confirm = page(&stack, &operator, &format!("{order}/refund")).await;
    assert!(confirm.contains("Refund $15.00 to the buyer?"), "{confirm}");
    assert!(
        confirm.contains(&format!("<form method=\"post\" action=\"{order}/refund\">")),
        "{confirm}"
    );
    assert!(
        has_status(&page(&stack, &operator, &order).await, "Paid"),
        "showing the confirmation refunded nothing"
    );
    let refunded = post_refund(&stack, &operator, &order).await;
    assert_eq!(refunded.status(), StatusCode::SEE_OTHER);
    let back = refunded.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(back, format!("{order}?refunded=1"));
    let html = page_until(&stack, &operator, &back, "the refund", |html| {
        has_status(html, "Refunded")
    })
    .await;
    assert!(
        html.contains("Refunded: the buyer gets $15.00 back"),
        "{html}"
    );
    assert!(
        !offers_refund(&html) && !offers_pay_or_cancel(&html),
        "{html}"
    );

    // Asking again is refused in the API's words, on the order page.
    let again = post_refund(&stack, &operator, &order).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let html = again.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("already refunded"), "{html}");
    assert!(has_status(&html, "Refunded"), "{html}");

    // The buyer's orders say Refunded, and the order offers nothing to do.
    let list = page(&stack, &buyer, "/orders").await;
    assert!(
        list.contains("<span class=\"badge status-refunded\">Refunded</span>"),
        "{list}"
    );
    assert!(
        !list.contains(">Paid<") && !list.contains(">Cancelled<"),
        "{list}"
    );
    let html = page(&stack, &buyer, &order).await;
    assert!(has_status(&html, "Refunded"), "{html}");
    assert!(html.contains("goes back to your card"), "{html}");
    assert!(
        !offers_pay_or_cancel(&html) && !offers_refund(&html),
        "{html}"
    );
}

#[tokio::test]
async fn a_buyer_is_offered_no_refund_and_posting_one_is_refused_in_words() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) =
        an_order_page(&stack, "own-seller@example.com", "own-buyer@example.com").await;
    pay(&stack, &buyer, &order).await;

    let html = page(&stack, &buyer, &order).await;
    assert!(html.contains("Payment received"), "{html}");
    assert!(!offers_refund(&html), "{html}");

    let confirm = buyer
        .get(stack.url(&format!("{order}/refund")))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), StatusCode::FORBIDDEN);
    assert!(confirm.text().await.unwrap().contains("Operators only"));

    let refused = post_refund(&stack, &buyer, &order).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Operators only"), "{html}");
    assert!(has_status(&page(&stack, &buyer, &order).await, "Paid"));

    // Anyone else who is no operator still cannot open the order.
    let stranger = signed_up(&stack, "stranger@example.com").await;
    let other = stranger.get(stack.url(&order)).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert!(other.text().await.unwrap().contains("Not yours"));
}

#[tokio::test]
async fn a_refund_the_provider_refuses_or_leaves_unanswered_is_explained_on_the_order_page() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) = an_order_page(
        &stack,
        "dispute-seller@example.com",
        "dispute-buyer@example.com",
    )
    .await;
    pay(&stack, &buyer, &order).await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;

    stack.provider.set_refunds_refused(true);
    let refused = post_refund(&stack, &operator, &order).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let html = refused.text().await.unwrap();
    assert!(html.contains("This charge is disputed"), "{html}");
    assert!(has_status(&html, "Paid") && offers_refund(&html), "{html}");
    stack.provider.set_refunds_refused(false);

    stack.provider.set_unavailable(true);
    let unanswered = post_refund(&stack, &operator, &order).await;
    assert_eq!(unanswered.status(), StatusCode::OK, "not an error page");
    let html = unanswered.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("not answering"), "{html}");
    assert!(has_status(&html, "Paid") && offers_refund(&html), "{html}");
    stack.provider.set_unavailable(false);

    let refunded = post_refund(&stack, &operator, &order).await;
    assert_eq!(refunded.status(), StatusCode::SEE_OTHER);
    page_until(&stack, &buyer, &order, "the refund", |html| {
        has_status(html, "Refunded")
    })
    .await;
}

/// The text inside the element with this id (up to the next tag), if there is one.
fn text_of(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker)? + marker.len();
    let start = html[start..].find('>')? + start + 1;
    let end = html[start..].find('<')? + start;
    Some(html[start..end].trim().to_owned())
}

/// Posts a console form to `path` as `browser` from our own page, with `back` as the page
/// to return to; returns the redirect's target and the page it shows, with its notice.
async fn console_action(
    stack: &Stack,
    browser: &reqwest::Client,
    path: &str,
    back: &str,
) -> (String, String) {
    let response = browser
        .post(stack.url(path))
        .header(header::ORIGIN, stack.origin())
        .form(&[("back", back)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{path}: {}",
        response.text().await.unwrap()
    );
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let page_path = location.split('#').next().unwrap().to_owned();
    let html = page(stack, browser, &page_path).await;
    (location, html)
}

#[tokio::test]
async fn only_operators_see_the_console_and_the_link_to_it() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let job = Uuid::now_v7();
    for path in ["/admin", "/admin/queues"] {
        let response = client().get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            response.headers()[header::LOCATION],
            format!("/signin?next={path}").as_str()
        );
    }

    let user = signed_up(&stack, "curious@example.com").await;
    for path in [
        "/admin".to_owned(),
        "/admin/queues".to_owned(),
        format!("/admin/jobs/{job}/discard"),
    ] {
        let response = user.get(stack.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Operators only"), "{path}: {html}");
    }
    for path in [
        format!("/admin/services/orders/parked/{job}/replay"),
        format!("/admin/jobs/{job}/retry"),
        format!("/admin/jobs/{job}/promote"),
        format!("/admin/jobs/{job}/discard"),
    ] {
        let response = user
            .post(stack.url(&path))
            .header(header::ORIGIN, stack.origin())
            .form(&[("back", "/admin")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await.unwrap().contains("Operators only"));
    }
    let home = page(&stack, &user, "/").await;
    assert!(!home.contains("href=\"/admin\""), "{home}");

    let operator = signed_up(&stack, OPERATOR_EMAIL).await;
    for path in ["/", "/orders", "/tickets/new"] {
        let html = page(&stack, &operator, path).await;
        assert!(
            html.contains(r#"<a href="/admin" id="console-link">Console</a>"#),
            "{path}: {html}"
        );
    }
    let console = page(&stack, &operator, "/admin").await;
    assert!(console.contains("<h1>Operations console</h1>"), "{console}");
    for part in [
        "queue-heading",
        "services-heading",
        "attention-heading",
        "actions-heading",
    ] {
        assert!(
            console.contains(&format!("id=\"{part}\"")),
            "{part}: {console}"
        );
    }
    let queue = page(&stack, &operator, "/admin/queues").await;
    assert!(
        queue.contains("<h1 id=\"queue-heading\">Expiration queue</h1>"),
        "{queue}"
    );
    assert!(queue.contains("id=\"queue-counts\""), "{queue}");
    assert!(
        !queue.contains("id=\"services-heading\""),
        "the queue alone: {queue}"
    );
    assert_eq!(inline_scripts(&console), Vec::<String>::new());
}

#[tokio::test]
async fn the_console_shows_the_queue_parked_events_and_payments_needing_attention() {
    let stack = Stack::without_expiration_workers().await;
    let (buyer, order, _) = an_order_page(
        &stack,
        "console-seller@example.com",
        "console-buyer@example.com",
    )
    .await;
    let order_id = order.trim_start_matches("/orders/").to_owned();
    pay(&stack, &buyer, &order).await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;
    // A refund the provider refuses.
    stack.provider.set_refunds_refused(true);
    let refused = post_refund(&stack, &operator, &order).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    // An expiry for an order orders never had: parked at once.
    let unknown = Uuid::now_v7();
    stack
        .publish(
            "expiration.complete",
            serde_json::json!({"orderId": unknown}),
        )
        .await;
    // A job whose publish failed until it gave up.
    let failed = Uuid::now_v7();
    stack.fail_a_job(failed).await;

    let html = page_until(&stack, &operator, "/admin", "the parked expiry", |html| {
        html.contains("id=\"parked-orders\"")
    })
    .await;

    // The queue: the buyer's order waits for its expiry, the failed job failed, nothing fired.
    assert_eq!(
        text_of(&html, "count-delayed").as_deref(),
        Some("1"),
        "{html}"
    );
    assert_eq!(text_of(&html, "count-active").as_deref(), Some("0"));
    assert_eq!(text_of(&html, "count-failed").as_deref(), Some("1"));
    assert_eq!(text_of(&html, "count-completed").as_deref(), Some("0"));
    assert!(html.contains("id=\"lateness-empty\""), "{html}");
    assert!(html.contains("aria-current=\"page\">Failed"), "{html}");
    assert!(html.contains(&format!("id=\"job-{failed}\"")), "{html}");
    assert!(html.contains("NATS said no"), "the job's error: {html}");
    assert!(
        html.contains(&format!(
            "<form method=\"post\" action=\"/admin/jobs/{failed}/retry\""
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/admin/jobs/{failed}/discard?back=")),
        "{html}"
    );
    let delayed = page(&stack, &operator, "/admin?state=delayed").await;
    assert!(
        delayed.contains(&format!("id=\"job-{order_id}\"")),
        "{delayed}"
    );
    assert!(
        delayed.contains(&format!("<a href=\"/orders/{order_id}\">")),
        "{delayed}"
    );
    assert!(
        delayed.contains(&format!(
            "<form method=\"post\" action=\"/admin/jobs/{order_id}/promote\""
        )),
        "{delayed}"
    );
    assert!(
        !delayed.contains(&format!("id=\"job-{failed}\"")),
        "{delayed}"
    );

    // Every service, none unavailable; orders' consumers and its parked expiry.
    for service in ["auth", "tickets", "orders", "payments", "expiration"] {
        assert!(
            html.contains(&format!("id=\"service-{service}\"")),
            "{service}"
        );
        assert!(
            !html.contains(&format!("id=\"unavailable-{service}\"")),
            "{service}: {html}"
        );
    }
    assert!(text_of(&html, "outbox-orders").is_some(), "{html}");
    assert!(html.contains("id=\"consumers-orders\""), "{html}");
    let parked = &html[html.find("id=\"parked-orders\"").unwrap()..];
    assert!(
        parked.contains("<code>expiration.complete</code>"),
        "{parked}"
    );
    assert!(
        parked.contains(&unknown.to_string()),
        "the error names the order"
    );
    assert!(
        parked.contains("action=\"/admin/services/orders/parked/"),
        "a Replay button: {parked}"
    );

    // Payments: the refused refund, with the provider's words and who asked.
    let refusals = &html[html.find("id=\"refused-refunds\"").expect(&html)..];
    assert!(
        refusals.contains(&format!("href=\"/orders/{order_id}\"")),
        "{refusals}"
    );
    assert!(refusals.contains("$15.00"), "{refusals}");
    assert!(refusals.contains("disputed"), "{refusals}");
    assert!(refusals.contains("<td>you</td>"), "{refusals}");
    // The refund is the latest operator action.
    let actions = &html[html.find("id=\"operator-actions\"").expect(&html)..];
    assert!(
        actions.contains("<td>you</td>\n      <td>payments</td>\n      <td>refund</td>"),
        "{actions}"
    );
    assert!(actions.contains(&order_id), "{actions}");
}

#[tokio::test]
async fn replay_retry_promote_and_discard_post_to_the_api_and_say_what_became_of_them() {
    let stack = Stack::without_expiration_workers().await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;

    // Replay: refused while the order is unknown, applied once it exists.
    let unknown = Uuid::now_v7();
    stack
        .publish(
            "expiration.complete",
            serde_json::json!({"orderId": unknown}),
        )
        .await;
    let html = page_until(&stack, &operator, "/admin", "the parked expiry", |html| {
        html.contains("id=\"parked-orders\"")
    })
    .await;
    let at = html
        .find("action=\"/admin/services/orders/parked/")
        .unwrap()
        + 8;
    let replay = html[at..at + html[at..].find('"').unwrap()].to_owned();
    let (location, html) = console_action(&stack, &operator, &replay, "/admin").await;
    assert_eq!(location, "/admin", "back to the top, where the outcome is");
    assert_eq!(
        html.matches("id=\"notice\"").count(),
        1,
        "the outcome is said: {html}"
    );
    let notice = text_of(&html, "notice").unwrap();
    assert!(notice.contains("was not replayed in orders"), "{notice}");
    assert!(
        notice.contains("refused again"),
        "the API's words: {notice}"
    );
    assert!(
        html.contains("class=\"alert\" role=\"status\" id=\"notice\""),
        "{html}"
    );
    assert!(html.contains("id=\"parked-orders\""), "still parked");
    let again = page(&stack, &operator, "/admin").await;
    assert!(!again.contains("id=\"notice\""), "said once: {again}");

    let seller = signed_up(&stack, "replay-seller@example.com").await;
    let listed: serde_json::Value = seller
        .post(stack.url("/api/tickets"))
        .json(&serde_json::json!({"title": "Replayed Night", "price": 20}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket: Uuid = listed["id"].as_str().unwrap().parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = stack.orders_db().pool.acquire().await.unwrap();
        // An order that ran out of time, as if orders had created it and lost its expiry.
        let inserted = ticketing_orders::store::orders::insert(
            &mut conn,
            unknown,
            Uuid::now_v7(),
            ticket,
            Duration::ZERO,
        )
        .await
        .unwrap();
        if inserted.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "orders never learnt the ticket"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, html) = console_action(&stack, &operator, &replay, "/admin").await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(
        notice.contains("was replayed in orders and applied"),
        "{notice}"
    );
    assert!(html.contains("class=\"success\" role=\"status\" id=\"notice\""));
    assert!(
        !html.contains("id=\"parked-orders\""),
        "no longer parked: {html}"
    );
    assert!(html.contains("id=\"parked-orders-none\""), "{html}");
    // Both replays are listed as the operator's.
    let actions = &html[html.find("id=\"operator-actions\"").expect(&html)..];
    assert_eq!(
        actions
            .matches("<td>you</td>\n      <td>orders</td>\n      <td>replay</td>")
            .count(),
        2,
        "{actions}"
    );
    // Replaying it again: the API no longer knows it.
    let (_, html) = console_action(&stack, &operator, &replay, "/admin").await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(notice.contains("was not replayed in orders"), "{notice}");
    assert!(notice.to_lowercase().contains("not found"), "{notice}");

    // Retry: a failed job is due again, and fires.
    let failed = Uuid::now_v7();
    stack.fail_a_job(failed).await;
    let (location, html) = console_action(
        &stack,
        &operator,
        &format!("/admin/jobs/{failed}/retry"),
        "/admin/queues?state=failed",
    )
    .await;
    assert_eq!(location, "/admin/queues?state=failed");
    assert_eq!(
        text_of(&html, "notice").unwrap(),
        format!("Job {failed} will run again now.")
    );
    assert_eq!(
        text_of(&html, "count-failed").as_deref(),
        Some("0"),
        "{html}"
    );
    assert_eq!(
        text_of(&html, "count-delayed").as_deref(),
        Some("1"),
        "{html}"
    );
    stack.fire_due_jobs().await;
    let html = page(&stack, &operator, "/admin/queues").await;
    assert_eq!(
        text_of(&html, "count-completed").as_deref(),
        Some("1"),
        "{html}"
    );
    assert!(html.contains("<svg"), "the lateness chart: {html}");
    assert!(html.contains("id=\"lateness-table\""), "{html}");
    // Retrying a job that is not failed is refused in the API's words, not an error page.
    let (_, html) = console_action(
        &stack,
        &operator,
        &format!("/admin/jobs/{failed}/retry"),
        "/admin/queues",
    )
    .await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(
        notice.starts_with(&format!("Job {failed} was not retried: ")),
        "{notice}"
    );

    // Promote: a delayed job fires now.
    let later = Uuid::now_v7();
    assert!(
        stack
            .queue
            .enqueue(later, now_ms() + 3_600_000)
            .await
            .unwrap()
    );
    let (_, html) = console_action(
        &stack,
        &operator,
        &format!("/admin/jobs/{later}/promote"),
        "/admin?state=delayed",
    )
    .await;
    assert_eq!(
        text_of(&html, "notice").unwrap(),
        format!("Job {later} fires now.")
    );
    stack.fire_due_jobs().await;
    let html = page(&stack, &operator, "/admin/queues?state=delayed").await;
    assert_eq!(
        text_of(&html, "count-completed").as_deref(),
        Some("2"),
        "{html}"
    );
    assert_eq!(
        text_of(&html, "count-delayed").as_deref(),
        Some("0"),
        "{html}"
    );

    // Discard: asked first, without script; then gone from the failed jobs.
    let doomed = Uuid::now_v7();
    stack.fail_a_job(doomed).await;
    let confirm = page(
        &stack,
        &operator,
        &format!("/admin/jobs/{doomed}/discard?back=/admin/queues%3Fstate%3Dfailed"),
    )
    .await;
    assert!(
        confirm.contains(&format!("Discard job {doomed}?")),
        "{confirm}"
    );
    assert!(
        confirm.contains("NATS said no"),
        "the job's error: {confirm}"
    );
    assert!(
        confirm.contains(&format!(
            "<form method=\"post\" action=\"/admin/jobs/{doomed}/discard\">"
        )),
        "{confirm}"
    );
    assert!(
        confirm.contains("name=\"back\" value=\"/admin/queues?state=failed\""),
        "{confirm}"
    );
    assert_eq!(
        text_of(
            &page(&stack, &operator, "/admin/queues").await,
            "count-failed"
        )
        .as_deref(),
        Some("1"),
        "showing the confirmation discarded nothing"
    );
    let discard = format!("/admin/jobs/{doomed}/discard");
    let (_, html) = console_action(&stack, &operator, &discard, "/admin/queues?state=failed").await;
    assert_eq!(
        text_of(&html, "notice").unwrap(),
        format!("Job {doomed} was discarded.")
    );
    assert_eq!(
        text_of(&html, "count-failed").as_deref(),
        Some("0"),
        "{html}"
    );
    assert!(!html.contains(&format!("id=\"job-{doomed}\"")), "{html}");
    let (_, html) = console_action(&stack, &operator, &discard, "/admin/queues?state=failed").await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(
        notice.starts_with(&format!("Job {doomed} was not discarded: ")),
        "{notice}"
    );

    // The queue's actions are listed with the services'.
    let html = page(&stack, &operator, "/admin").await;
    let actions = &html[html.find("id=\"operator-actions\"").expect(&html)..];
    for action in ["retry", "promote", "discard"] {
        assert!(
            actions.contains(&format!("<td>expiration</td>\n      <td>{action}</td>")),
            "{action}: {actions}"
        );
    }
}
