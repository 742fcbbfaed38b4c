"""``cloudhelp demo``: the sample catalog, network, demo accounts and cases (and, with
``--history``, past activity; with ``--serve``, then the server)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.cli.serve_commands import listen, serve, url_of
from cloudhelp.core import clock
from cloudhelp.core.config import Settings
from cloudhelp.devtools import demo, demo_campaign, demo_items, history
from cloudhelp.domain import accounts, audit, metrics
from cloudhelp.domain.passwords import hash_password
from cloudhelp.store import db, serverlock
from cloudhelp.store.models import Kiosk, Staff

DEMO_PASSWORD = "cloudhelp-demo"


@dataclass
class Loaded:
    """What the demo loaded: counts, the staff accounts and each kiosk's enrolment code (None
    for a kiosk enrolled or revoked already)."""

    items: int
    stations: int
    kiosks: int
    staff_accounts: int
    staff: list[Staff]
    codes: dict[str, str | None]
    names: dict[str, str]
    revoked: set[str]


async def cmd_demo(args: argparse.Namespace) -> int:
    """Load the demo; with ``--serve`` the port is taken first and the server runs after."""
    settings = settings_of(args)
    # With --serve (scripts/demo.sh) the port is taken first: the first line is the URL, and a
    # port in use is said before anything is loaded.
    sock = listen(settings) if args.serve else None
    url = url_of(settings, sock)
    if sock is not None:
        print(f"CloudHelp demo: open {url} (loading the demo data, then the server starts)")
        # A database another server serves is said before anything is loaded into it.
        try:
            clustered = settings.redis_url is not None
            async with serverlock.hold(settings.effective_database_url, clustered):
                pass  # the server takes it again when it starts
        except BaseException:
            sock.close()
            raise

    async def work(engine: db.AsyncEngine) -> int:
        loaded = await _load(engine, settings.effective_secret_key.encode())
        print(f"Demo data loaded into {db.display_url(engine.url)}:")
        _print_loaded(loaded, url)
        if args.history:
            await _history(engine, settings, args.history, args.per_day)
        # After the history: a day that already has tickets is left alone by the history, so the
        # demo cases' sessions (today's, numbered from the live counter) must come second.
        async with db.session_factory(engine)() as session, session.begin():
            opened = await demo.seed_cases(session, settings.district_code)
        if opened:
            print(f"  {opened} demo cases, one in each state (cloudhelp case list).")
        async with db.session_factory(engine)() as session, session.begin():
            made = await demo_items.seed_items(session, settings.data_dir)
        if made:
            print(
                f"  {made} demo papers on the road, in every state ({url}logistics, {url}station)."
            )
        async with db.session_factory(engine)() as session, session.begin():
            boats = await demo_campaign.seed_campaign(
                session, settings.district_code, clock.utcnow()
            )
        if boats:
            print(f"  A campaign under way: {boats} boats at 前关 and 棠梨 ({url}campaigns).")
        if sock is None:
            print(f"Start the server with:  cloudhelp serve   (then open {url})")
        return 0

    try:
        with audit.demo_load():
            await with_database(settings, work)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    if sock is None:
        return 0
    print("Starting the server…", flush=True)
    return await serve(settings, sock)


async def _load(engine: db.AsyncEngine, secret: bytes) -> Loaded:
    """Samples in, every staff password the demo one, a one-time code for each kiosk not
    enrolled: the same code as on every earlier run (valid another 24 h), so links printed
    before keep working; enrolled kiosks keep their credential."""
    demo_hash = await hash_password(DEMO_PASSWORD)  # in a worker thread, before the transaction
    async with db.session_factory(engine)() as session, session.begin():
        counts, net = await demo.load_samples(session)
        staff = list((await session.scalars(select(Staff).order_by(Staff.id))).all())
        for person in staff:
            person.password_hash = demo_hash
        kiosks = (await session.scalars(select(Kiosk).order_by(Kiosk.code))).all()
        codes: dict[str, str | None] = {}
        for k in kiosks:
            if k.credential_hash is None and k.revoked_at is None:
                codes[k.code] = await accounts.enrol_kiosk(
                    session, k.station.code, k.code, code=accounts.demo_enrol_code(secret, k.code)
                )
                await audit.append(session, audit.cli_actor(), "kiosk.enrol_code_issued",
                                   subject_kind="kiosk", subject=k.code,
                                   station=k.station.code)  # fmt: skip
            else:
                codes[k.code] = None
    return Loaded(
        items=counts["items"],
        stations=net["stations"],
        kiosks=net["kiosks"],
        staff_accounts=net["staff"],
        staff=staff,
        codes=codes,
        names={k.code: k.name for k in kiosks},
        revoked={k.code for k in kiosks if k.revoked_at is not None},
    )


def _print_loaded(loaded: Loaded, url: str) -> None:
    """The accounts to sign in with and each kiosk's link (or why it has none)."""
    print(
        f"  {loaded.items} service items (sample data), {loaded.stations} stations, "
        f"{loaded.kiosks} kiosks, {loaded.staff_accounts} staff accounts."
    )
    print(f"  Staff accounts (password for all: {DEMO_PASSWORD}), sign in at {url}staff :")
    for person in loaded.staff:
        where = (
            f"  (station attendant: sign in at {url}station)" if person.role == "attendant" else ""
        )
        print(f"    {person.username:<10} {person.role:<10} {person.display_name}{where}")
    print("  Kiosks: open a kiosk's link once in its browser (one-time code, valid 24 h):")
    for code, enrol_code in loaded.codes.items():
        if enrol_code:
            where = f"{url}kiosk?enrol={enrol_code}"
        elif code in loaded.revoked:
            where = "revoked (a new code: cloudhelp kiosk enrol STATION --code " + code + ")"
        else:
            where = f"enrolled already: {url}kiosk on that device"
        print(f"    {code:<8} {where}  {loaded.names[code]}")


async def _history(engine: db.AsyncEngine, settings: Settings, days: int, per_day: int) -> None:
    """``days`` days of past activity and today so far, then the reports' figures for them."""
    database = db.Database(engine)
    made = await history.generate(
        database, days, tickets_per_day=per_day, district=settings.district_code
    )
    last = clock.today()
    await metrics.refresh(
        database, last - timedelta(days=days), last, rules=metrics.Rules.of(settings)
    )
    if made:
        print(
            f"  {made} tickets of history: the last {days} days and today so far "
            "(see /reports and /board)."
        )
    else:  # a day that has tickets is left alone: this database had its history already
        print(
            f"  History: the last {days} days were there already, kept as they were (see "
            "/reports and /board; for a fresh demo, another data folder: CLOUDHELP_DATA_DIR)."
        )
