from cloudhelp.cli import main

raise SystemExit(main())
