# Sourced by bin/compile after node-runtime.sh. Chooses the app's package manager as Heroku does:
# package.json's packageManager ("pnpm@9.1.0"), else the lockfile (pnpm-lock.yaml, yarn.lock),
# else npm. yarn (classic 1.x, or 2+ "berry") and pnpm come from the npm registry as packages
# (`yarn`, `@yarnpkg/cli-dist`, `pnpm`), cached in CACHE_DIR, and run on the chosen node; their
# package caches live in CACHE_DIR too. Sets PM (npm|yarn|pnpm), PM_LABEL and defines pm().

PM=npm
PM_LABEL=npm
PM_CLI=""

# choose_package_manager PACKAGE_MANAGER_FIELD
choose_package_manager() {
  local field="$1" version="" spec="" dir bin major
  if [[ -n "$field" ]]; then
    [[ "$field" =~ ^(npm|yarn|pnpm)@([0-9][0-9A-Za-z.-]*)(\+.*)?$ ]] ||
      error "packageManager in package.json must be npm, yarn or pnpm with a version (\"pnpm@9.1.0\"), not \"${field:0:60}\""
    PM="${BASH_REMATCH[1]}"
    version="${BASH_REMATCH[2]}"
  elif [[ -f pnpm-lock.yaml ]]; then
    PM=pnpm
  elif [[ -f yarn.lock ]]; then
    PM=yarn
  fi
  local locks=()
  for f in package-lock.json npm-shrinkwrap.json yarn.lock pnpm-lock.yaml; do [[ -f "$f" ]] && locks+=("$f"); done
  if [[ ${#locks[@]} -gt 1 && ! ( ${#locks[@]} -eq 2 && -f package-lock.json && -f npm-shrinkwrap.json ) ]]; then
    error "Two package managers' lockfiles: ${locks[*]}. Keep the one of the manager you use (rack picked $PM)."
  fi
  [[ "$PM" == npm ]] && return 0
  if [[ "$PM" == pnpm ]]; then
    if [[ -z "$version" ]]; then
      # The lockfile's format says which pnpm wrote it.
      case "$(sed -n "s/^lockfileVersion: *'\{0,1\}\([0-9]*\).*/\1/p" pnpm-lock.yaml 2>/dev/null | head -n 1)" in
        5) version=7 ;; 6) version=8 ;; *) version=9 ;;
      esac
    fi
    spec="pnpm@$version" bin=bin/pnpm.cjs PM_LABEL="pnpm"
  else
    major="${version%%.*}"
    if [[ -n "$major" && "$major" -ge 2 ]] || { [[ -z "$version" ]] && { [[ -f .yarnrc.yml ]] || grep -q '^__metadata:' yarn.lock 2>/dev/null; }; }; then
      spec="@yarnpkg/cli-dist@${version:-4}" bin=bin/yarn.js PM_LABEL="yarn (berry)"
    else
      spec="yarn@${version:-1}" bin=bin/yarn.js PM_LABEL="yarn (classic)"
    fi
  fi
  dir="$CACHE_DIR/package-managers/${spec//[^A-Za-z0-9.@-]/_}"
  if [[ ! -f "$dir/$bin" ]]; then
    fetch_package "$spec" "$dir.tmp" || error "could not download $spec from the npm registry"
    [[ -f "$dir.tmp/$bin" ]] || error "$spec has no $bin"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  PM_CLI="$dir/$bin"
  # Registry calls give up in bounded time rather than retry silently for minutes.
  export YARN_CACHE_FOLDER="$CACHE_DIR/yarn-cache" YARN_ENABLE_GLOBAL_CACHE=false YARN_ENABLE_TELEMETRY=0
  export YARN_HTTP_TIMEOUT=30000 YARN_HTTP_RETRY=1 YARN_ENABLE_PROGRESS_BARS=false
  export npm_config_store_dir="$CACHE_DIR/pnpm-store"
  mkdir -p "$YARN_CACHE_FOLDER" "$npm_config_store_dir"
}

pm() {
  if [[ "$PM" == npm ]]; then npm "$@"; else node "$PM_CLI" "$@"; fi
}

# pm_install: the dependencies, dev ones included (a build script may need them), as the
# lockfile says when there is one.
pm_install() {
  case "$PM_LABEL" in
    "yarn (classic)")
      local frozen=(); [[ -f yarn.lock ]] && frozen=(--frozen-lockfile)
      pm install "${frozen[@]}" --production=false --non-interactive --no-progress --network-timeout 30000 ;;
    "yarn (berry)")
      local immutable=(); [[ -f yarn.lock ]] && immutable=(--immutable)
      pm install "${immutable[@]}" ;;
    pnpm)
      local frozen=(); [[ -f pnpm-lock.yaml ]] && frozen=(--frozen-lockfile)
      pm install "${frozen[@]}" --prod=false --reporter=append-only ;;
  esac
}

# pm_prune: devDependencies out of node_modules after the build.
pm_prune() {
  case "$PM_LABEL" in
    "yarn (classic)") pm install --production=true --ignore-scripts --prefer-offline --frozen-lockfile --non-interactive --no-progress ;;
    "yarn (berry)") echo "yarn 2+ keeps devDependencies (it prunes only through workspaces focus)" ;;
    pnpm) pm prune --prod --reporter=append-only ;;
  esac
}
