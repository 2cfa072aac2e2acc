from bucketscribe.cli.main import main

raise SystemExit(main())
