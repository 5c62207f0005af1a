//! Demand forecasts from a history of quantities per bucket, pure and in decimals: a moving
//! average, and exponential smoothing with trend and (additive) seasonality, Holt-Winters;
//! without a season it is Holt's trend-adjusted smoothing. The error is the MAPE of the
//! one-step-ahead forecasts over the history (periods with no demand left out).
//!
//! ```text
//!  level    L_t = α (y_t - S_{t-m}) + (1 - α)(L_{t-1} + B_{t-1})
//!  trend    B_t = β (L_t - L_{t-1}) + (1 - β) B_{t-1}
//!  season   S_t = γ (y_t - L_t) + (1 - γ) S_{t-m}
//!  forecast ŷ_{t+h} = L_t + h B_t + S_{t+h-m}   (the season's latest estimate)
//! ```
//! Started from the first two seasons (level and trend from their means, seasonal indices from
//! the first season about its trend line), so a series that is exactly trend plus season is
//! forecast exactly; without a season from the first two periods. The periods a start was
//! taken from are not scored (they fit by construction).

use rust_decimal::Decimal;

/// A forecast with how it fits the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fit {
    /// The one-step-ahead forecast of each history period (none before the method has enough
    /// history).
    pub fitted: Vec<Option<Decimal>>,
    /// The periods after the history.
    pub forecast: Vec<Decimal>,
    /// Mean absolute percentage error of `fitted`, in percent (none: nothing to compare).
    pub mape: Option<Decimal>,
}

/// The smoothing constants (each 0 to 1) and the season's length in buckets (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smoothing {
    pub alpha: Decimal,
    pub beta: Decimal,
    pub gamma: Decimal,
    pub season: usize,
}

/// Where smoothing starts: level and trend before the first period (Holt, no season).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub level: Decimal,
    pub trend: Decimal,
}

/// Why a forecast cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForecastError {
    #[error("{needed} periods of history are needed, {given} given")]
    ShortHistory { needed: usize, given: usize },
    #[error("{0} must be between 0 and 1")]
    Constant(&'static str),
    #[error("a moving average needs a window of at least one period")]
    Window,
}

fn mean(values: &[Decimal]) -> Decimal {
    values.iter().sum::<Decimal>() / Decimal::from(values.len())
}

/// The MAPE of `fitted` against `actual`, in percent, two decimals.
pub fn mape(actual: &[Decimal], fitted: &[Option<Decimal>]) -> Option<Decimal> {
    let errors: Vec<Decimal> = actual
        .iter()
        .zip(fitted)
        .filter_map(|(a, f)| match f {
            Some(f) if !a.is_zero() => Some(((*a - *f) / *a).abs()),
            _ => None,
        })
        .collect();
    if errors.is_empty() {
        return None;
    }
    Some((mean(&errors) * Decimal::ONE_HUNDRED).round_dp(2))
}

/// The mean of the last `window` periods: each period's forecast, and the flat forecast ahead.
pub fn moving_average(
    history: &[Decimal],
    window: usize,
    horizon: usize,
) -> Result<Fit, ForecastError> {
    if window == 0 {
        return Err(ForecastError::Window);
    }
    if history.len() < window {
        return Err(ForecastError::ShortHistory {
            needed: window,
            given: history.len(),
        });
    }
    let fitted: Vec<Option<Decimal>> = (0..history.len())
        .map(|t| (t >= window).then(|| mean(&history[t - window..t])))
        .collect();
    let ahead = mean(&history[history.len() - window..]);
    Ok(Fit {
        mape: mape(history, &fitted),
        fitted,
        forecast: vec![ahead; horizon],
    })
}

/// Exponential smoothing with trend and, when `smoothing.season` is 2 or more, seasonality;
/// started from `start` when given (no season), else from the history itself.
pub fn smooth(
    history: &[Decimal],
    smoothing: Smoothing,
    start: Option<Start>,
    horizon: usize,
) -> Result<Fit, ForecastError> {
    for (name, value) in [
        ("alpha", smoothing.alpha),
        ("beta", smoothing.beta),
        ("gamma", smoothing.gamma),
    ] {
        if value < Decimal::ZERO || value > Decimal::ONE {
            return Err(ForecastError::Constant(name));
        }
    }
    let Smoothing {
        alpha,
        beta,
        gamma,
        season,
    } = smoothing;
    let m = if season >= 2 { season } else { 0 };
    let needed = if m > 0 {
        2 * m
    } else if start.is_some() {
        1
    } else {
        2
    };
    if history.len() < needed {
        return Err(ForecastError::ShortHistory {
            needed,
            given: history.len(),
        });
    }
    // The state after period `first - 1`, and the seasonal index of each phase.
    let (mut level, mut trend, mut seasonal, first) = if m > 0 {
        let first_mean = mean(&history[..m]);
        let trend = (mean(&history[m..2 * m]) - first_mean) / Decimal::from(m);
        let middle = Decimal::from(m - 1) / Decimal::TWO;
        let seasonal: Vec<Decimal> = (0..m)
            .map(|i| history[i] - (first_mean + trend * (Decimal::from(i) - middle)))
            .collect();
        (first_mean + trend * middle, trend, seasonal, m)
    } else if let Some(start) = start {
        (start.level, start.trend, Vec::new(), 0)
    } else {
        (history[0], history[1] - history[0], Vec::new(), 1)
    };
    let phase = |t: usize, seasonal: &[Decimal]| {
        if m > 0 {
            seasonal[t % m]
        } else {
            Decimal::ZERO
        }
    };
    // The periods the start was taken from fit by construction: they are not scored.
    let scored_from = if m > 0 {
        2 * m
    } else if start.is_some() {
        0
    } else {
        2
    };
    let mut fitted = vec![None; history.len()];
    for (t, &actual) in history.iter().enumerate().skip(first) {
        let season_before = phase(t, &seasonal);
        if t >= scored_from {
            fitted[t] = Some(level + trend + season_before);
        }
        let previous = level;
        level = alpha * (actual - season_before) + (Decimal::ONE - alpha) * (level + trend);
        trend = beta * (level - previous) + (Decimal::ONE - beta) * trend;
        if m > 0 {
            seasonal[t % m] = gamma * (actual - level) + (Decimal::ONE - gamma) * season_before;
        }
    }
    let n = history.len();
    let forecast = (1..=horizon)
        .map(|h| level + Decimal::from(h) * trend + phase(n + h - 1, &seasonal))
        .collect();
    Ok(Fit {
        mape: mape(history, &fitted),
        fitted,
        forecast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    macro_rules! dec {
        ($value:literal) => {
            Decimal::from_str(stringify!($value)).expect("a decimal literal")
        };
    }

    fn two(value: Decimal) -> Decimal {
        value.round_dp(2)
    }

    /// Heizer, Render & Munson, *Operations Management*, forecasting chapter, Donna's Garden
    /// Supply: shed sales January to December and the published three-month moving averages
    /// for April to December and the next January.
    #[test]
    fn three_month_moving_average_of_donnas_garden_supply() {
        let sales = [10, 12, 13, 16, 19, 23, 26, 30, 28, 18, 16, 14].map(Decimal::from);
        let fit = moving_average(&sales, 3, 1).unwrap();
        let published = [
            dec!(11.67),
            dec!(13.67),
            dec!(16.00),
            dec!(19.33),
            dec!(22.67),
            dec!(26.33),
            dec!(28.00),
            dec!(25.33),
            dec!(20.67),
        ];
        let fitted: Vec<Decimal> = fit.fitted[3..].iter().map(|f| two(f.unwrap())).collect();
        assert_eq!(fitted, published);
        assert!(fit.fitted[..3].iter().all(Option::is_none));
        assert_eq!(two(fit.forecast[0]), dec!(16.00));
    }

    /// Heizer, Render & Munson, trend-adjusted exponential smoothing (a Portland manufacturer
    /// of pollution-control equipment): α = 0.2, β = 0.4, F1 = 11 and T1 = 2; the published
    /// forecasts including trend for months 2 and 3 are 14.72 and 17.28 (13.00 for month 1).
    #[test]
    fn trend_adjusted_smoothing_of_the_published_example() {
        let demand = [12, 17, 20, 19, 24, 21, 31, 28, 36].map(Decimal::from);
        let fit = smooth(
            &demand,
            Smoothing {
                alpha: dec!(0.2),
                beta: dec!(0.4),
                gamma: Decimal::ZERO,
                season: 0,
            },
            Some(Start {
                level: dec!(11),
                trend: dec!(2),
            }),
            1,
        )
        .unwrap();
        assert_eq!(two(fit.fitted[0].unwrap()), dec!(13.00));
        assert_eq!(two(fit.fitted[1].unwrap()), dec!(14.72));
        assert_eq!(two(fit.fitted[2].unwrap()), dec!(17.28));
    }

    /// A series that is exactly a line plus a season is forecast exactly, whatever the
    /// constants, and its MAPE is zero.
    #[test]
    fn exact_trend_and_season_are_forecast_exactly() {
        let season = [dec!(-20), dec!(5), dec!(30), dec!(-15)];
        let value = |t: usize| dec!(200) + dec!(3.5) * Decimal::from(t) + season[t % 4];
        let history: Vec<Decimal> = (0..16).map(value).collect();
        for (alpha, beta, gamma) in [
            (dec!(0.2), dec!(0.1), dec!(0.3)),
            (dec!(0.9), dec!(0.5), dec!(0.05)),
        ] {
            let fit = smooth(
                &history,
                Smoothing {
                    alpha,
                    beta,
                    gamma,
                    season: 4,
                },
                None,
                8,
            )
            .unwrap();
            let expected: Vec<Decimal> = (16..24).map(|t| two(value(t))).collect();
            assert_eq!(
                fit.forecast.iter().map(|f| two(*f)).collect::<Vec<_>>(),
                expected
            );
            assert_eq!(fit.mape, Some(dec!(0.00)));
        }
    }

    #[test]
    fn mape_leaves_out_periods_without_demand_or_forecast() {
        let actual = [dec!(100), dec!(0), dec!(50), dec!(80)];
        let fitted = [None, Some(dec!(10)), Some(dec!(60)), Some(dec!(60))];
        // |50-60|/50 = 20 %, |80-60|/80 = 25 %: 22.5 %
        assert_eq!(mape(&actual, &fitted), Some(dec!(22.50)));
        assert_eq!(mape(&[dec!(0)], &[Some(dec!(1))]), None);
    }

    #[test]
    fn too_short_a_history_or_constants_out_of_range_are_refused() {
        let history = [dec!(1), dec!(2), dec!(3)];
        let smoothing = Smoothing {
            alpha: dec!(0.5),
            beta: dec!(0.5),
            gamma: dec!(0.5),
            season: 2,
        };
        assert_eq!(
            smooth(&history, smoothing, None, 1),
            Err(ForecastError::ShortHistory {
                needed: 4,
                given: 3
            })
        );
        assert_eq!(
            smooth(
                &history,
                Smoothing {
                    alpha: dec!(1.5),
                    ..smoothing
                },
                None,
                1
            ),
            Err(ForecastError::Constant("alpha"))
        );
        assert_eq!(moving_average(&history, 0, 1), Err(ForecastError::Window));
    }
}
