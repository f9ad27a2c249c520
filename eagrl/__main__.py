from eagrl.cli import main

raise SystemExit(main())
