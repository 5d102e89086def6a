"""The application layer: composes the core (engine, throttle, telemetry, backends, report)
for a use, and never prints (the command line, :mod:`hashcore.cli`, does).

Modules: :mod:`mine` (a mining run: pool, miner, listening services, the watch loop),
:mod:`live` (the live throttle loop), :mod:`actuators` (knobs on the engine and on real
devices), :mod:`sources` (live budget and battery sources: files and URLs polled),
:mod:`inputs` (trace, model and curve files read and written, bounded), :mod:`devices`
(device curves and the fleet measured by benchmarking), :mod:`plan` (a throttle run's
policy, fleet, battery and account from its options), :mod:`budget` (``mine
--power-budget``), :mod:`simulate`, :mod:`trace`, :mod:`bench` and :mod:`sweep`.
"""
