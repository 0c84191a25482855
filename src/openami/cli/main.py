"""The ``openami`` command line.

Every error is one line on stderr and a non-zero exit: 2 for bad input (flags, configuration,
an unusable data dir), 1 for anything that went wrong while running. ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from openami import __version__
from openami.config import Config, load_config
from openami.errors import AmiError, BenchmarkError, ConfigError
from openami.log import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="openami",
    help="openami: an open Advanced Metering Infrastructure.\n\n"
    "Simulated smart meters push DLMS/COSEM reads, ciphered with their own keys, to a "
    "head-end; the MDMS stores them, finds gaps and has them collected again.\n\n"
    "Start with:  openami demo --meters 1000 --days 2",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_subcommands() -> None:
    from openami.cli import (
        api_cmd,
        dlms_cmd,
        fleet_cmd,
        greenbutton_cmd,
        headend_cmd,
        hems_cmd,
        mdm_cmd,
        meter_cmd,
        routeb_cmd,
    )

    app.add_typer(dlms_cmd.app, name="dlms")
    app.add_typer(meter_cmd.app, name="meter")
    app.add_typer(fleet_cmd.app, name="fleet")
    app.add_typer(headend_cmd.app, name="headend")
    app.add_typer(mdm_cmd.app, name="mdm")
    app.add_typer(routeb_cmd.app, name="routeb")
    app.add_typer(hems_cmd.app, name="hems")
    app.add_typer(api_cmd.app, name="api")
    app.add_typer(greenbutton_cmd.app, name="greenbutton")


_register_subcommands()


class _State:
    debug = False
    config: Config | None = None


def _version(value: bool) -> None:
    if value:
        print(f"openami {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML configuration file (default: ./openami.toml if present).",
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _State.debug = debug
    cfg = load_config(config)
    _State.config = cfg
    configure_logging("DEBUG" if debug else cfg.log.level, cfg.log.format)


def _config() -> Config:
    return _State.config or load_config()


@app.command()
def demo(
    meters: Annotated[
        int | None,
        typer.Option(min=1, max=1_000_000, help="Number of household meters [default: 1000]."),
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=1, max=45, help="Simulated days [default: 2].")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0, max=2**32 - 1, help="Seed: the same seed gives the same run [default: 1]."
        ),
    ] = None,
    loss: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=0.5, help="Share of datagrams lost on the network, 0..0.5 [default: 0.02]."
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(help="First simulated day, YYYY-MM-DD, Japan time [default: 2026-08-03]."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where the registry, the Parquet lake and the plot go [default: ./openami-data].",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
    plot: Annotated[
        bool, typer.Option(help="Write the fleet's load curve to DATA_DIR/load-curve.png.")
    ] = True,
) -> None:
    """Run the whole chain end to end in accelerated time and check that nothing is lost.

    A fleet of simulated household meters (Japanese load shapes, some with rooftop PV) pushes
    every 30-minute read as a ciphered DLMS/COSEM data-notification. The network loses
    --loss of the datagrams; the head-end verifies and decodes the rest; the MDMS stores
    them, finds the gaps and has the head-end collect them again from the meters. At the end
    every meter's stored reads must add up to its register change.

    Example: openami demo --meters 10000 --days 2 --loss 0.05 --json
    """
    from openami.cli.demo_run import DemoParams, prepare_data_dir, run_demo
    from openami.cli.plot import write_load_curve
    from openami.cli.view import summary_table

    cfg = _config().demo
    try:
        first_day = date.fromisoformat(start or cfg.start)
    except ValueError:
        raise ConfigError(f"--start {start!r} is not a date of the form YYYY-MM-DD") from None
    params = DemoParams(
        meters=meters or cfg.meters,
        days=days or cfg.days,
        seed=cfg.seed if seed is None else seed,
        loss=cfg.loss if loss is None else loss,
        start=first_day,
        data_dir=data_dir or Path(_config().data_dir),
    )
    prepare_data_dir(params)  # fail on a bad data dir before any progress is drawn
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("intervals"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=params.days * 48)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        result = run_demo(params, report)
    if plot:
        result.plot = str(
            write_load_curve(
                result.load_curve, result.meters, 1800, params.data_dir / "load-curve.png"
            )
        )
    if as_json:
        sys.stdout.write(msgspec.json.encode(result.summary()).decode() + "\n")
    else:
        out = Console()
        out.print(summary_table(result))
        if result.plot:
            out.print(f"load curve written to {result.plot}")
    if result.reads_missing or not result.reconciled:
        raise AmiError(
            f"{result.reads_missing} reads missing, "
            f"{result.reconciliation_failures} meters do not reconcile"
        )


@app.command()
def bench(
    name: Annotated[str | None, typer.Argument(help="Benchmark to run (see --list).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the benchmarks and exit.")] = False,
    run_all: Annotated[bool, typer.Option("--all", help="Run every benchmark.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per benchmark.")
    ] = False,
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder of bench_*.py files [default: ./benchmarks]."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="KEY=VALUE passed to the benchmark, e.g. -p meters=1000."
        ),
    ] = None,
) -> None:
    """Run benchmarks; each reports a ratio against a baseline measured in the same run.

    Example: openami bench demo --json
    """
    from openami.bench import discover, find_bench_dir

    found = discover(find_bench_dir(folder))
    if list_:
        for bench_name, bench_item in sorted(found.items()):
            print(f"{bench_name:20} {bench_item.description}")
        return
    if run_all:
        names = sorted(found)
    elif name is None:
        raise typer.BadParameter("name a benchmark, or pass --list or --all", param_hint="NAME")
    elif name not in found:
        raise BenchmarkError(f"no benchmark named {name!r}; known: {', '.join(sorted(found))}")
    else:
        names = [name]
    options = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--param'")
        options[key] = value
    for bench_name in names:
        outcome = found[bench_name].run(options)
        if as_json:
            sys.stdout.write(msgspec.json.encode(outcome).decode() + "\n")
        else:
            print(
                f"{outcome.name}: {outcome.value:,.1f} {outcome.unit}; baseline "
                f"{outcome.baseline_name} {outcome.baseline_value:,.1f}; ratio {outcome.ratio:.4f}"
            )
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every failure into one line and an exit code."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        code = command.main(args=args, prog_name="openami", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:
        # usage errors (bad flags, values out of range) from the command-line parser
        text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"error: {text}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except ConfigError as exc:
        if _State.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AmiError as exc:
        if _State.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if _State.debug or "--debug" in args:
            raise
        print(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
