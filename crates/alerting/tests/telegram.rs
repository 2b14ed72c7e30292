//! The Telegram notifier against a local fake of the Bot API: what it sends (chat, HTML text, no link
//! previews), and how each of Telegram's failures comes back (429 with retry_after, 500, no answer),
//! never with the bot token in the error.

use alerting::testing::{Answer, FakeBotApi};
use alerting::{Notifier, NotifyError, TelegramNotifier, TelegramSettings};
use std::time::Duration;

fn notifier(fake: &FakeBotApi) -> TelegramNotifier {
    notifier_with_timeout(fake, Duration::from_millis(500))
}

fn notifier_with_timeout(fake: &FakeBotApi, timeout: Duration) -> TelegramNotifier {
    let mut settings =
        TelegramSettings::from_values(Some("123:secret-token"), Some("-1001"), Some(&fake.url))
            .unwrap()
            .unwrap();
    settings.timeout = timeout;
    TelegramNotifier::new(&settings).unwrap()
}

#[actix_web::test]
async fn a_message_is_sent_as_html_to_the_chat() {
    let fake = FakeBotApi::start();
    let n = notifier(&fake);
    n.send("<b>HIGH</b> &lt;img&gt;").await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.token, "123:secret-token");
    assert!(r.method.eq_ignore_ascii_case("sendMessage"), "{}", r.method);
    assert_eq!(r.body["chat_id"], -1001);
    assert_eq!(r.body["text"], "<b>HIGH</b> &lt;img&gt;");
    assert_eq!(r.body["parse_mode"], "HTML");
    assert_eq!(r.body["link_preview_options"]["is_disabled"], true);
    assert_eq!(fake.delivered(), vec!["<b>HIGH</b> &lt;img&gt;"]);
}

#[actix_web::test]
async fn failures_say_what_happened_without_the_token() {
    let fake = FakeBotApi::start();
    fake.script([
        Answer::RetryAfter(3),
        Answer::Hang(Duration::from_secs(2)),
        Answer::ServerError,
    ]);
    let n = notifier(&fake);
    assert_eq!(
        n.send("a").await,
        Err(NotifyError::RetryAfter(Duration::from_secs(3)))
    );
    // teloxide waits 10 s after a 5xx before it reads the answer: the 500 needs a longer timeout.
    let patient = notifier_with_timeout(&fake, Duration::from_secs(15));
    for (n, expected) in [(&n, "timed out"), (&patient, "Internal Server Error")] {
        match n.send("a").await {
            Err(NotifyError::Failed(reason)) => {
                assert!(
                    reason.contains(expected),
                    "{reason}: {:#?}",
                    fake.requests()
                );
                assert!(!reason.contains("secret-token"), "{reason}");
            }
            other => panic!("{other:?}: {:#?}", fake.requests()),
        }
    }
    // Nothing is listening: a refused connection, again without the token.
    let closed = TelegramNotifier::new(
        &TelegramSettings::from_values(
            Some("123:secret-token"),
            Some("1"),
            Some("http://127.0.0.1:9/"),
        )
        .unwrap()
        .unwrap(),
    )
    .unwrap();
    match closed.send("a").await {
        Err(NotifyError::Failed(reason)) => assert!(!reason.contains("secret-token"), "{reason}"),
        other => panic!("{other:?}"),
    }
}
