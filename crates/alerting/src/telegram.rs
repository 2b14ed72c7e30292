//! Telegram through teloxide. `TELEGRAM_BOT_TOKEN` and `TELEGRAM_CHAT_ID` come from the environment
//! and are optional (without both, alerting is off); `TELEGRAM_API_URL` points at another Bot API
//! server (a self-hosted telegram-bot-api, or a test server). The token is never printed: the
//! settings' Debug hides it, and teloxide's errors are reported without the request URL (which
//! carries the token).

use crate::notifier::{Notifier, NotifyError};
use std::time::Duration;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{ChatId, LinkPreviewOptions, ParseMode, Recipient};

#[derive(Clone)]
pub struct TelegramSettings {
    pub token: String,
    pub chat: Recipient,
    pub api_url: Option<url::Url>,
    pub timeout: Duration,
}

impl std::fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("token", &"<hidden>")
            .field("chat", &self.chat)
            .field("api_url", &self.api_url.as_ref().map(|u| u.as_str()))
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TelegramSettingsError {
    #[error(
        "TELEGRAM_BOT_TOKEN is set but TELEGRAM_CHAT_ID is not (or the other way round): set both, or neither to turn alerting off"
    )]
    Incomplete,
    #[error("TELEGRAM_CHAT_ID must be a numeric chat id or an @channel username, not {0:?}")]
    BadChat(String),
    #[error("TELEGRAM_API_URL is not a URL: {0}")]
    BadApiUrl(String),
}

impl TelegramSettings {
    /// From the three values (as read from the environment). None: alerting is off.
    pub fn from_values(
        token: Option<&str>,
        chat_id: Option<&str>,
        api_url: Option<&str>,
    ) -> Result<Option<Self>, TelegramSettingsError> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let chat_id = chat_id.map(str::trim).filter(|c| !c.is_empty());
        let (token, chat_id) = match (token, chat_id) {
            (None, None) => return Ok(None),
            (Some(t), Some(c)) => (t, c),
            _ => return Err(TelegramSettingsError::Incomplete),
        };
        let chat = if let Ok(id) = chat_id.parse::<i64>() {
            Recipient::Id(ChatId(id))
        } else if chat_id.starts_with('@') && chat_id.len() > 1 {
            Recipient::ChannelUsername(chat_id.to_owned())
        } else {
            return Err(TelegramSettingsError::BadChat(chat_id.to_owned()));
        };
        let api_url = api_url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                url::Url::parse(u).map_err(|e| TelegramSettingsError::BadApiUrl(e.to_string()))
            })
            .transpose()?;
        Ok(Some(TelegramSettings {
            token: token.to_owned(),
            chat,
            api_url,
            // Above teloxide's 10 s pause after a 5xx answer, so that the answer is still read.
            timeout: Duration::from_secs(20),
        }))
    }

    /// From `TELEGRAM_BOT_TOKEN`, `TELEGRAM_CHAT_ID` and `TELEGRAM_API_URL`.
    pub fn from_env() -> Result<Option<Self>, TelegramSettingsError> {
        let var = |k: &str| std::env::var(k).ok();
        Self::from_values(
            var("TELEGRAM_BOT_TOKEN").as_deref(),
            var("TELEGRAM_CHAT_ID").as_deref(),
            var("TELEGRAM_API_URL").as_deref(),
        )
    }
}

pub struct TelegramNotifier {
    bot: Bot,
    chat: Recipient,
}

impl TelegramNotifier {
    pub fn new(settings: &TelegramSettings) -> Result<Self, NotifyError> {
        let client = teloxide::net::default_reqwest_settings()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| NotifyError::Failed(format!("cannot build the HTTP client: {e}")))?;
        let mut bot = Bot::with_client(settings.token.clone(), client);
        if let Some(url) = &settings.api_url {
            bot = bot.set_api_url(url.clone());
        }
        Ok(TelegramNotifier {
            bot,
            chat: settings.chat.clone(),
        })
    }
}

/// teloxide's error, without the request URL (it holds the bot token).
fn describe(error: &RequestError) -> String {
    match error {
        RequestError::Network(e) => {
            if e.is_timeout() {
                return "timed out".into();
            }
            let mut text = e.to_string();
            if let Some(url) = e.url() {
                text = text.replace(url.as_str(), "the Bot API");
            }
            format!("network: {text}")
        }
        other => other.to_string(),
    }
}

impl Notifier for TelegramNotifier {
    async fn send(&self, text: &str) -> Result<(), NotifyError> {
        let sent = self
            .bot
            .send_message(self.chat.clone(), text)
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions {
                is_disabled: true,
                url: None,
                prefer_small_media: false,
                prefer_large_media: false,
                show_above_text: false,
            })
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(RequestError::RetryAfter(after)) => Err(NotifyError::RetryAfter(after.duration())),
            Err(error) => Err(NotifyError::Failed(describe(&error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_both_or_neither_and_the_token_is_never_shown() {
        assert!(matches!(
            TelegramSettings::from_values(None, None, None),
            Ok(None)
        ));
        assert!(matches!(
            TelegramSettings::from_values(Some(" "), Some(""), None),
            Ok(None)
        ));
        assert_eq!(
            TelegramSettings::from_values(Some("123:abc"), None, None).unwrap_err(),
            TelegramSettingsError::Incomplete
        );
        assert!(matches!(
            TelegramSettings::from_values(Some("123:abc"), Some("my chat"), None),
            Err(TelegramSettingsError::BadChat(_))
        ));
        assert!(matches!(
            TelegramSettings::from_values(Some("123:abc"), Some("-100"), Some("not a url")),
            Err(TelegramSettingsError::BadApiUrl(_))
        ));
        let s = TelegramSettings::from_values(
            Some("123:secret"),
            Some("@ops"),
            Some("http://127.0.0.1:9/"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.chat, Recipient::ChannelUsername("@ops".into()));
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
