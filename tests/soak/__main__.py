from tests.soak.soak import main

raise SystemExit(main())
