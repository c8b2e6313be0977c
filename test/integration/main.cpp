#define BOOST_TEST_MODULE pixtream integration
#include <boost/test/unit_test.hpp>
